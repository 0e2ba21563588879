#!/bin/sh
# What the test suite needs from the system: Mosquitto (the suite starts its own private
# instance on a free port), Chromium (headless browser tests) and a CJK font (so the
# console's Chinese text renders in the screenshots). Installs from Debian's packages where
# missing, and starts the system Mosquitto if it is installed but not running.
set -eu
need=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need="$need mosquitto"
[ -x /usr/bin/chromium ] || need="$need chromium"
[ -d /usr/share/fonts/truetype/wqy ] || need="$need fonts-wqy-microhei"
if [ -n "$need" ]; then
    echo "installing:$need"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi
if ! pgrep -x mosquitto >/dev/null 2>&1 && [ -f /etc/mosquitto/mosquitto.conf ]; then
    echo "starting the system Mosquitto"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO mosquitto -d -c /etc/mosquitto/mosquitto.conf || echo "could not start the system Mosquitto; the suite uses its own"
fi
