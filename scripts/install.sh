#!/usr/bin/env bash
# Install teachbox as a service that starts on boot.
#
#   sudo scripts/install.sh [--dry-run] [--mirror DIR] [--no-start] [--root DIR] [--name NAME]
#
# For Raspberry Pi OS Bookworm (Python 3.11) and Trixie (Python 3.13), 64-bit; plain
# Debian 12/13 works too (simulated camera and panel).  It installs the apt packages
# (python3-picamera2 and python3-lgpio where the Raspberry Pi archive has them), a venv
# with --system-site-packages in /opt/teachbox, the model and the hand/face/pose landmark
# files (sha256 checked) into /var/lib/teachbox/models, /etc/teachbox/config.toml with
# commented defaults, the systemd unit and an avahi service file (the page is announced as
# _http._tcp under [box] name), then starts it and prints the page's address.
#
# Re-running upgrades in place: the learned state and the config are kept.
#   --dry-run   check the platform and print every step; change nothing
#   --mirror    copy the model files from this folder instead of downloading them
#   --no-start  install and enable, but do not (re)start the service
#   --root DIR  install into DIR instead of / (for tests and images: no user, no systemctl)
#   --name NAME this box's name ([box] name in a new config; several boxes in one room): the
#               machine's host name becomes its id too, so http://<id>.local:8000 reaches it
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
dry_run=0 start=1 mirror="" root="" name=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --no-start) start=0 ;;
        --mirror) mirror=${2:?--mirror needs a folder}; shift ;;
        --root) root=${2:?--root needs a folder}; shift ;;
        --name) name=${2:?--name needs a name}; shift ;;
        -h|--help) sed -n '/^set -euo/q;2,$p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
    shift
done

prefix="$root/opt/teachbox"
config_dir="$root/etc/teachbox"
state_dir="$root/var/lib/teachbox"
unit_dir="$root/etc/systemd/system"
avahi_dir="$root/etc/avahi/services"
os_release=${TEACHBOX_OS_RELEASE:-/etc/os-release}
python=${TEACHBOX_PYTHON:-/usr/bin/python3}  # the system Python: apt's picamera2 and lgpio live there
arch=${TEACHBOX_ARCH:-$(uname -m)}

say() { printf 'teachbox: %s\n' "$*"; }
die() { printf 'teachbox: %s\n' "$*" >&2; exit 1; }
run() {
    if [ "$dry_run" = 1 ]; then
        printf 'would run: %s\n' "$*"
    else
        "$@"
    fi
}
run_quietly() {  # run, without the command's own output (what it did is said after)
    if [ "$dry_run" = 1 ]; then
        run "$@"
    else
        "$@" >/dev/null
    fi
}

check_platform() {
    [ -r "$os_release" ] || die "cannot read $os_release: this installer is for Raspberry Pi OS / Debian"
    # shellcheck disable=SC1090
    . "$os_release"
    case "${ID:-}:${VERSION_CODENAME:-}" in
        debian:bookworm|debian:trixie|raspbian:bookworm|raspbian:trixie) ;;
        *) die "unsupported OS ${PRETTY_NAME:-unknown}: teachbox installs on Raspberry Pi OS (or Debian) Bookworm or Trixie. Nothing was changed." ;;
    esac
    case "$arch" in
        aarch64|x86_64) ;;
        armv6l|armv7l|armhf)
            die "this is a 32-bit system ($arch): no TFLite runtime (ai-edge-litert) exists for it. Install the 64-bit Raspberry Pi OS. Nothing was changed." ;;
        *) die "unsupported architecture $arch: ai-edge-litert has wheels for aarch64 and x86_64 only. Nothing was changed." ;;
    esac
    codename=$VERSION_CODENAME
    if [ "$dry_run" = 0 ] && [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
        die "run it as root: sudo $0"
    fi
    say "platform: ${PRETTY_NAME:-$ID $codename}, $arch"
}

apt_packages() {
    # avahi-daemon: <name>.local and the page's announcement; alsa-utils: aplay, for rules' sounds
    local packages=(python3 python3-venv python3-pip ca-certificates avahi-daemon alsa-utils)
    local optional
    for optional in python3-picamera2:camera python3-lgpio:"buttons and LEDs"; do
        if apt-cache show "${optional%%:*}" >/dev/null 2>&1; then
            packages+=("${optional%%:*}")
        else
            say "${optional%%:*} is not in this system's archive (not Raspberry Pi OS?): the ${optional#*:} will be simulated"
        fi
    done
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${packages[@]}"
}

system_user() {
    [ -z "$root" ] || return 0
    getent group gpio >/dev/null || run groupadd --system gpio
    getent group video >/dev/null || run groupadd --system video
    if ! id teachbox >/dev/null 2>&1; then
        run useradd --system --user-group --home-dir /var/lib/teachbox --shell /usr/sbin/nologin teachbox
    fi
}

copy_source() {
    run mkdir -p "$prefix"
    run rm -rf "$prefix/src.new"
    run mkdir -p "$prefix/src.new"
    run tar -C "$here" --exclude=.git --exclude=.venv --exclude=models --exclude=state \
        --exclude=test-artifacts --exclude='__pycache__' -cf "$prefix/src.tar" .
    run tar -C "$prefix/src.new" -xf "$prefix/src.tar"
    run rm -f "$prefix/src.tar"
    run rm -rf "$prefix/src"
    run mv "$prefix/src.new" "$prefix/src"
}

python_env() {
    [ -x "$prefix/venv/bin/python" ] || run "$python" -m venv --system-site-packages "$prefix/venv"
    local constraints=()
    # Bookworm's apt numpy is 1.x and picamera2 is built against it: keep pip from
    # pulling numpy 2 through ai-edge-litert's dependencies.
    if "$python" -c 'import numpy, sys; sys.exit(0 if numpy.__version__.startswith("1.") else 1)' 2>/dev/null; then
        run sh -c "echo 'numpy<2' > '$prefix/constraints.txt'"
        constraints=(-c "$prefix/constraints.txt")
        say "system numpy is 1.x: pinning numpy<2 in the venv"
    fi
    run "$prefix/venv/bin/python" -m pip install -q --upgrade pip
    run "$prefix/venv/bin/python" -m pip install -q --upgrade "${constraints[@]}" "$prefix/src"
}

model_and_config() {
    run mkdir -p "$state_dir/models" "$state_dir/state" "$config_dir"
    # the default model, then the hand, face and pose landmark files (one download for all)
    run_quietly "$prefix/venv/bin/teachbox" --log-level warning fetch-model --model-dir "$state_dir/models" \
        ${mirror:+--mirror "$mirror"}
    run_quietly "$prefix/venv/bin/teachbox" --log-level warning fetch-model --model-dir "$state_dir/models" \
        ${mirror:+--mirror "$mirror"} --source all
    [ "$dry_run" = 1 ] || say "models (sha256 checked): $state_dir/models"
    if [ -f "$config_dir/config.toml" ]; then
        say "keeping $config_dir/config.toml"
    else
        run sh -c "'$prefix/venv/bin/teachbox' default-config > '$config_dir/config.toml'"
        if [ -n "$name" ]; then
            run "$python" - "$config_dir/config.toml" "$name" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
text = text.replace("[box]\n", "[box]\nname = " + json.dumps(name, ensure_ascii=False) + "\n", 1)
open(path, "w", encoding="utf-8").write(text)
PY
        fi
    fi
    if [ -n "$name" ] && [ "$dry_run" = 0 ] && ! grep -q "^name = " "$config_dir/config.toml"; then
        say "keeping $config_dir/config.toml: set name = \"$name\" under [box] there to rename the box"
    fi
    # refuse a config with a typo before the service trips over it
    run "$prefix/venv/bin/teachbox" --log-level error info --config "$config_dir/config.toml" \
        --model-dir "$state_dir/models" >/dev/null
    # the config may hold the PIN, the MQTT password and the webhook's secret: root writes it,
    # the service reads it, nobody else sees it
    run chmod 0640 "$config_dir/config.toml"
    if [ -z "$root" ]; then
        run chown -R teachbox:teachbox "$state_dir"
        run chmod 0750 "$state_dir"
        run chown root:teachbox "$config_dir/config.toml"
    fi
}

service() {
    run install -D -m 0644 "$here/systemd/teachbox.service" "$unit_dir/teachbox.service"
    if [ -n "$root" ] || [ ! -d /run/systemd/system ]; then
        say "systemd is not running here: the unit is installed but not started"
        return 0
    fi
    run systemctl daemon-reload
    run systemctl enable teachbox.service
    if [ "$start" = 1 ]; then
        run systemctl restart teachbox.service
    fi
}

announce() {  # the page as an mDNS service under [box] name; with --name, the host name follows it
    run mkdir -p "$avahi_dir"
    run sh -c "'$prefix/venv/bin/teachbox' --log-level error mdns-service --config '$config_dir/config.toml' \
        > '$avahi_dir/teachbox.service.new' && mv '$avahi_dir/teachbox.service.new' '$avahi_dir/teachbox.service'"
    [ -n "$name" ] && [ -z "$root" ] || return 0
    local id
    id=$(printf '%s' "$name" | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-' | sed 's/^-*//; s/-*$//' | cut -c1-48)
    [ -n "$id" ] && [ "$id" != "$(hostname)" ] || return 0
    if command -v raspi-config >/dev/null; then
        run raspi-config nonint do_hostname "$id"  # also rewrites /etc/hosts
    elif command -v hostnamectl >/dev/null && [ -d /run/systemd/system ]; then
        run hostnamectl set-hostname "$id"
    else
        say "could not set the host name to $id here: set it yourself for http://$id.local to work"
        return 0
    fi
    say "host name: $id (http://$id.local after a reboot)"
}

page_address() {
    local port
    port=$(sed -n 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p' "$config_dir/config.toml" 2>/dev/null | head -n 1)
    port=${port:-8000}
    say "installed. Open the phone page on the same Wi-Fi:"
    say "  http://$(hostname).local:$port/"
    for ip in $(hostname -I 2>/dev/null); do
        case "$ip" in *:*) ;; *) say "  http://$ip:$port/" ;; esac
    done
    say "logs: journalctl -u teachbox -f    status: systemctl status teachbox"
}

check_platform
apt_packages
system_user
copy_source
python_env
model_and_config
service
announce
if [ "$dry_run" = 1 ]; then
    say "dry run: nothing was changed"
else
    page_address
fi
