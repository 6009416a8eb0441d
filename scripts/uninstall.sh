#!/usr/bin/env bash
# Remove the teachbox service and program; what was learned and the config are kept.
#
#   sudo scripts/uninstall.sh [--purge] [--dry-run] [--root DIR]
#
#   --purge    also delete /var/lib/teachbox (learned state, model), /etc/teachbox and the user
#   --dry-run  print every step; change nothing
set -euo pipefail

purge=0 dry_run=0 root=""
while [ $# -gt 0 ]; do
    case "$1" in
        --purge) purge=1 ;;
        --dry-run) dry_run=1 ;;
        --root) root=${2:?--root needs a folder}; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "uninstall.sh: unknown option $1" >&2; exit 64 ;;
    esac
    shift
done

say() { printf 'teachbox: %s\n' "$*"; }
run() {
    if [ "$dry_run" = 1 ]; then
        printf 'would run: %s\n' "$*"
    else
        "$@"
    fi
}

if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    run systemctl disable --now teachbox.service || true
fi
run rm -f "$root/etc/systemd/system/teachbox.service" "$root/etc/avahi/services/teachbox.service"
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    run systemctl daemon-reload
fi
run rm -rf "$root/opt/teachbox"
if [ "$purge" = 1 ]; then
    run rm -rf "$root/var/lib/teachbox" "$root/etc/teachbox"
    if [ -z "$root" ] && id teachbox >/dev/null 2>&1; then
        run userdel teachbox
    fi
    say "removed teachbox, its learned state and its config"
else
    say "removed teachbox; kept what it learned ($root/var/lib/teachbox) and its config ($root/etc/teachbox)"
    say "run with --purge to delete those too"
fi
