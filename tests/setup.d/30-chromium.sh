#!/usr/bin/env sh
# Debian's Chromium for the portal's browser tests (Playwright drives /usr/bin/chromium; no browser download),
# and a CJK font so the zh-CN pages (and their screenshots) render Chinese text.
set -eu
if [ ! -x /usr/bin/chromium ] || ! dpkg -s fonts-wqy-microhei >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q chromium fonts-wqy-microhei
fi
