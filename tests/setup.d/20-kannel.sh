#!/usr/bin/env sh
# Kannel (bearerbox + smsbox), the SMS gateway the SMS sink speaks to; the tests start their own on free loopback
# ports with their own kannel.conf, so the Debian package's service must not hold any port.
set -eu
export DEBIAN_FRONTEND=noninteractive
if ! command -v bearerbox >/dev/null 2>&1 || ! command -v smsbox >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q kannel
fi
# The packaged service (bearerbox + wapbox on the default ports): stopped and kept from starting at boot.
if [ -x /etc/init.d/kannel ] && [ -f /var/run/kannel/kannel_bearerbox.pid ]; then
    /etc/init.d/kannel stop >/dev/null 2>&1 || true
fi
if command -v update-rc.d >/dev/null 2>&1 && [ -e /etc/init.d/kannel ]; then
    update-rc.d kannel disable >/dev/null 2>&1 || true
fi
