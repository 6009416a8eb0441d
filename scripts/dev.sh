#!/usr/bin/env bash
# Set up everything on a fresh machine, then run the appliance or the tests.
#
#   scripts/dev.sh run  [teachbox run options]   # the appliance (simulated on a PC)
#   scripts/dev.sh test [pytest options]         # the test suite
#
# Creates .venv (with --system-site-packages, so apt's picamera2/lgpio are seen on a
# Pi), installs the project with its development extras, and puts the default model and
# the hand/face/pose landmark files into models/ (copied from $TEACHBOX_MODEL_MIRROR or
# ../shared/models when present, otherwise downloaded; the sha256 is always checked).
# Re-running is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/dev.sh run|test [options]" >&2; exit 64; }
[ $# -ge 1 ] || usage
command=$1; shift

apt_install() {
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "dev.sh: installing $* with apt" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "dev.sh: please install: sudo apt install $*" >&2
        exit 1
    fi
}

command -v python3 >/dev/null || apt_install python3 python3-venv python3-pip
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv python3-pip
if [ "$command" = test ]; then
    # the browser tests drive Debian's Chromium (never a downloaded browser build);
    # systemd-analyze checks the unit, shellcheck the shell scripts; the MQTT tests start a real Mosquitto
    missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    command -v systemd-analyze >/dev/null || missing+=(systemd)
    command -v shellcheck >/dev/null || missing+=(shellcheck)
    [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
    [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
fi

stamp=.venv/.teachbox-installed
want=$(sha256sum < pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python3 -m venv --system-site-packages .venv
    .venv/bin/python -m pip install -q --upgrade pip
    extras=dev
    # A Pi's apt numpy is 1.x: keep pip from pulling numpy 2 over it (it would break picamera2).
    if .venv/bin/python -c 'import picamera2' 2>/dev/null; then extras=dev,pi; fi
    .venv/bin/python -m pip install -q -e ".[$extras]"
    echo "$want" > "$stamp"
fi

mirror=${TEACHBOX_MODEL_MIRROR:-}
if [ -z "$mirror" ] && [ -d ../shared/models ]; then mirror=$(cd ../shared/models && pwd); fi
fetch() {
    .venv/bin/teachbox --log-level warning fetch-model --model-dir models ${mirror:+--mirror "$mirror"} "$@" >/dev/null
}
fetch                # the default model
fetch --source all   # the hand, face and pose landmark files (a download: one 33 MB wheel for all, once)

case "$command" in
    run)  exec .venv/bin/teachbox run --model-dir models --state-dir state "$@" ;;
    test) exec .venv/bin/python -m pytest "$@" ;;
    *)    usage ;;
esac
