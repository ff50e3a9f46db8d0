#!/usr/bin/env sh
# System packages and services the tests need, installed by the project's own files (CI starts from a clean
# machine). Each tests/setup.d/*.sh adds one component's needs; this runs them all.
set -eu
cd "$(dirname "$0")/.."
for part in tests/setup.d/*.sh; do
    [ -e "$part" ] || continue
    sh "$part"
done
