#!/usr/bin/env sh
# PostgreSQL runs on every machine of this kind; start it if it stopped.
set -eu
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
