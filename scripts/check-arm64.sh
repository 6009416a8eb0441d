#!/usr/bin/env bash
# Check that teachbox installs and runs on the Pi's CPU: arm64 Debian under QEMU, on any
# x86_64 Debian machine.
#
#   sudo scripts/check-arm64.sh [bookworm|trixie|all] [--mirror DIR]
#
# For each suite (default: all = bookworm and trixie, the userlands of Raspberry Pi OS
# 12 and 13): build, once, a minimal arm64 Debian root (debootstrap --variant=minbase
# with python3, python3-venv, python3-numpy, ca-certificates; cached), copy the
# project's git-tracked files from the working tree (uncommitted edits included) into
# it, make a venv with --system-site-packages, pip-install the dependencies from
# pyproject.toml as wheels only (never a source build; numpy<2 on bookworm so Debian's
# numpy 1.24 is kept, as on a Pi), install the project, fetch the model from the mirror
# with `teachbox fetch-model` (sha256 checked), and run scripts/arm64_smoke.py: the real
# model, the head, the mock front panel and the phone page.  Prints one summary line per
# suite with the seconds each step took; exits non-zero if any suite failed.
#
# Runs arm64 binaries with qemu-user-static through binfmt_misc and chroot; where
# binfmt_misc cannot be enabled, with proot instead (slower).  Installs debootstrap,
# qemu-user-static, binfmt-support and proot with apt when they are missing.  Mounts are
# made in a private mount namespace and vanish with each command.  Needs root, network
# access to Debian's archive and PyPI, and about 400 MB per suite.
#
# Environment:
#   TEACHBOX_ARM64_CACHE  where roots, .debs and pip's cache live (/var/cache/teachbox-arm64)
#   TEACHBOX_MODEL_MIRROR model folder when --mirror is not given (default ../shared/models)
#   TEACHBOX_ARM64_CPU    emulated core: cortex-a72 (Pi 4, default), cortex-a76 (Pi 5),
#                         cortex-a53 (Pi 3, Zero 2 W) or max
#   TEACHBOX_ARM64_PROOT=1  use proot even where binfmt_misc works
#   TEACHBOX_ARM64_REBUILD=1  build the roots again even if cached
#   DEBIAN_MIRROR         Debian archive for debootstrap (http://deb.debian.org/debian)
#
# Emulation is about 100x slower than native: nothing here is timed against a limit.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${TEACHBOX_ARM64_CACHE:-/var/cache/teachbox-arm64}
CPU=${TEACHBOX_ARM64_CPU:-cortex-a72}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOT_PKGS=python3,python3-venv,python3-numpy,ca-certificates
ROOT_VERSION="1 $ROOT_PKGS"  # a root built from another package list is rebuilt
CA=/etc/ssl/certs/ca-certificates.crt
PROJ=/srv/teachbox           # the project's place inside the root
MIRROR_IN_ROOT=/srv/teachbox-models

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
    exit 64
}
say() { printf 'check-arm64: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

suites=() mirror=${TEACHBOX_MODEL_MIRROR:-$REPO/../shared/models}
while [ $# -gt 0 ]; do
    case $1 in
        bookworm|trixie) suites+=("$1") ;;
        all) suites+=(bookworm trixie) ;;
        --mirror) [ $# -ge 2 ] || usage; mirror=$2; shift ;;
        --mirror=*) mirror=${1#--mirror=} ;;
        -h|--help) usage ;;
        *) say "unknown argument: $1"; usage ;;
    esac
    shift
done
[ ${#suites[@]} -gt 0 ] || suites=(bookworm trixie)

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mounts): sudo $0 $*"
[ "$(uname -m)" = x86_64 ] || say "made for x86_64 hosts; untested on $(uname -m)"
case $CPU in cortex-a72|cortex-a76|cortex-a53|max) ;; *) die "TEACHBOX_ARM64_CPU=$CPU: use cortex-a72, cortex-a76, cortex-a53 or max" ;; esac

# -- the model ----------------------------------------------------------------------------
model_name=$(sed -n 's/^DEFAULT_MODEL = "\(.*\)"$/\1/p' "$REPO/device/models.py")
[ -n "$model_name" ] || die "cannot read DEFAULT_MODEL from device/models.py"
[ -f "$mirror/$model_name" ] || die "model mirror $mirror has no $model_name (give --mirror DIR or set TEACHBOX_MODEL_MIRROR)"
mirror=$(cd "$mirror" && pwd)

# -- host tools ---------------------------------------------------------------------------
missing=()
for tool in debootstrap:debootstrap qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support \
            proot:proot unshare:util-linux flock:util-linux git:git; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing with apt: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# binfmt_misc lets the kernel run arm64 programs through qemu, so a plain chroot works.
use_proot=${TEACHBOX_ARM64_PROOT:-0}
binfmt=/proc/sys/fs/binfmt_misc
if [ "$use_proot" != 1 ]; then
    [ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
    grep -qs '^enabled' "$binfmt/qemu-aarch64" || update-binfmts --enable qemu-aarch64 2>/dev/null || true
    if ! grep -qs '^enabled' "$binfmt/qemu-aarch64"; then
        say "binfmt_misc cannot run arm64 programs here: falling back to proot (slower)"
        use_proot=1
    elif ! grep -qs '^flags:.*F' "$binfmt/qemu-aarch64"; then
        binfmt_copy_qemu=1  # the interpreter is looked up inside the root: put it there
    fi
fi
qemu_interpreter=$(sed -n 's/^interpreter //p' "$binfmt/qemu-aarch64" 2>/dev/null || true)

mkdir -p "$CACHE"

# -- per suite ----------------------------------------------------------------------------

# build_root SUITE ROOT: debootstrap into ROOT.new, then rename (an interrupted build is never used)
build_root() {
    local suite=$1 root=$2 log=$CACHE/$1-build.log
    local new=$root.new
    rm -rf "$new"
    mkdir -p "$CACHE/debs-$suite"
    say "$suite: building the arm64 root in $root (several minutes; log: $log)"
    {
        if [ "$use_proot" != 1 ]; then
            debootstrap --arch=arm64 --variant=minbase --include="$ROOT_PKGS" \
                --cache-dir="$CACHE/debs-$suite" "$suite" "$new" "$DEBIAN_MIRROR"
        else
            debootstrap --foreign --arch=arm64 --variant=minbase --include="$ROOT_PKGS" \
                --cache-dir="$CACHE/debs-$suite" "$suite" "$new" "$DEBIAN_MIRROR"
            # Debian's proot 5.1 does not translate statx/faccessat2: name debootstrap's folder.
            DEBOOTSTRAP_DIR=/debootstrap QEMU_CPU=$CPU proot -0 -q qemu-aarch64-static -r "$new" -w / \
                -b /dev -b /sys /debootstrap/debootstrap --second-stage
        fi
    } >"$log" 2>&1 || { tail -n 25 "$log" >&2; rm -rf "$new"; return 1; }
    rm -rf "$new/var/cache/apt/archives/"*.deb
    echo "$ROOT_VERSION" > "$new/.teachbox-arm64-root"
    rm -rf "$root"
    mv "$new" "$root"
}

# fake_cpuinfo ROOT: an arm64 /proc/cpuinfo for the emulated core.  QEMU shows the guest
# the host's x86 one, and the cpuinfo library in ai-edge-litert (XNNPACK) crashes on it.
fake_cpuinfo() {
    local part features n
    case $CPU in
        cortex-a53) part=0xd03 features="fp asimd evtstrm crc32 cpuid" ;;
        cortex-a76) part=0xd0b features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
        *) part=0xd08 features="fp asimd evtstrm crc32 cpuid" ;;
    esac
    for ((n = 0; n < $(nproc); n++)); do
        printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' "$n" "$features"
        printf 'CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 3\n\n' "$part"
    done > "$1/.teachbox-cpuinfo"
}

# in_root SUITE ROOT 'COMMAND': run COMMAND with /bin/sh in $PROJ inside the root, clean environment
in_root() {
    local suite=$1 root=$2 command=$3
    local pip_cache=$CACHE/pip-$suite
    local env=(/usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        QEMU_CPU="$CPU" PIP_USER=0 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_DEFAULT_TIMEOUT=60
        PIP_CERT="$CA" SSL_CERT_FILE="$CA" REQUESTS_CA_BUNDLE="$CA" PYTHONUNBUFFERED=1
        /bin/sh -ec "cd $PROJ && $command")
    mkdir -p "$pip_cache" "$root/root/.cache/pip"
    if [ "$use_proot" != 1 ]; then
        # shellcheck disable=SC2016  # expanded by the inner shell
        unshare -m --propagation private sh -ec '
            root=$1 cache=$2; shift 2
            mount -t proc proc "$root/proc"
            mount --bind "$root/.teachbox-cpuinfo" "$root/proc/cpuinfo"
            mount --rbind /dev "$root/dev"
            mount --rbind /sys "$root/sys"
            mount --bind "$cache" "$root/root/.cache/pip"
            exec chroot "$root" "$@"' sh "$root" "$pip_cache" "${env[@]}"
    else
        QEMU_CPU=$CPU proot -0 -q qemu-aarch64-static -r "$root" -w / -b /dev -b /proc -b /sys \
            -b "$root/.teachbox-cpuinfo:/proc/cpuinfo" -b "$pip_cache:/root/.cache/pip" "${env[@]}"
    fi
}

# copy_project ROOT: the working tree's git-tracked files (edits included, untracked files
# and build leftovers not; the smoke test always) and the model, into the root
copy_project() {
    local root=$1 file
    rm -rf "${root:?}$PROJ" "${root:?}$MIRROR_IN_ROOT" "$root/tmp/pip-freeze.txt"
    mkdir -p "$root$PROJ" "$root$MIRROR_IN_ROOT"
    { git -C "$REPO" ls-files -z --cached; printf '%s\0' scripts/arm64_smoke.py; } | sort -zu |
        while IFS= read -r -d '' file; do
            if [ -e "$REPO/$file" ] || [ -L "$REPO/$file" ]; then printf '%s\0' "$file"; fi
        done |
        tar -C "$REPO" --null -T - -cf - | tar -C "$root$PROJ" -xf -
    cp "$mirror/$model_name" "$root$MIRROR_IN_ROOT/"
    # same DNS and trusted CAs as the host (needed behind a TLS-inspecting proxy)
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    if [ -f "$CA" ]; then cp -L "$CA" "$root$CA"; fi
    if [ "${binfmt_copy_qemu:-0}" = 1 ] && [ -n "$qemu_interpreter" ]; then
        mkdir -p "$root$(dirname "$qemu_interpreter")"
        cp "$qemu_interpreter" "$root$qemu_interpreter"
    fi
}

# The commands run inside the root.  Dependencies come from pyproject.toml; everything is
# a wheel (--only-binary=:all:).  The project itself is pure Python: it is built with the
# venv's setuptools (a wheel too) without build isolation, and installed without deps.
INSTALL='python3 -m venv --system-site-packages .venv
python3 -c "import tomllib
with open(\"pyproject.toml\", \"rb\") as f:
    print(\"\\n\".join(tomllib.load(f)[\"project\"][\"dependencies\"]))" > /tmp/requirements.txt
.venv/bin/pip install -q --only-binary=:all: -c /tmp/constraints.txt "setuptools>=77"
.venv/bin/pip install -q --only-binary=:all: -c /tmp/constraints.txt -r /tmp/requirements.txt
.venv/bin/pip install -q --no-deps --no-build-isolation .
.venv/bin/pip check
.venv/bin/pip list --format=freeze > /tmp/pip-freeze.txt'
SMOKE=".venv/bin/teachbox --log-level warning fetch-model --mirror $MIRROR_IN_ROOT --model-dir models
cd /tmp && $PROJ/.venv/bin/python $PROJ/scripts/arm64_smoke.py $PROJ/models/$model_name"

# check_suite SUITE RESULT_FILE: writes the suite's summary line to RESULT_FILE
check_suite() {
    local suite=$1 result=$2 root=$CACHE/$1 t0 t_root t_copy t_pip t_smoke cached=cached versions
    t0=$SECONDS
    exec 9>"$CACHE/.lock-$suite"
    flock 9  # one run per root at a time
    echo "$suite FAIL: building the root failed" > "$result"
    if [ "${TEACHBOX_ARM64_REBUILD:-0}" = 1 ] || [ "$(cat "$root/.teachbox-arm64-root" 2>/dev/null)" != "$ROOT_VERSION" ]; then
        build_root "$suite" "$root"
        cached=built
    fi
    t_root=$((SECONDS - t0))
    echo "$suite FAIL: copying the project failed" > "$result"
    fake_cpuinfo "$root"
    copy_project "$root"
    if [ "$suite" = bookworm ]; then
        echo 'numpy<2' > "$root/tmp/constraints.txt"  # keep apt's numpy 1.24, as a Pi's apt packages need
    else
        : > "$root/tmp/constraints.txt"
    fi
    t_copy=$((SECONDS - t0 - t_root))
    say "$suite: venv and pip install (wheels only)"
    echo "$suite FAIL: venv/pip install failed (root $t_root s $cached)" > "$result"
    in_root "$suite" "$root" "$INSTALL"
    t_pip=$((SECONDS - t0 - t_root - t_copy))
    versions=$(grep -i -E '^(numpy|ml.dtypes|ai.edge.litert)==' "$root/tmp/pip-freeze.txt" | tr '\n' ' ')
    versions=${versions% }
    say "$suite: smoke test on the emulated $CPU ($versions)"
    echo "$suite FAIL: smoke test failed (root $t_root s $cached, venv+pip $t_pip s; $versions)" > "$result"
    in_root "$suite" "$root" "$SMOKE"
    t_smoke=$((SECONDS - t0 - t_root - t_copy - t_pip))
    echo "$suite PASS in $((SECONDS - t0)) s: root $t_root s ($cached), copy $t_copy s, venv+pip $t_pip s," \
         "smoke $t_smoke s ($versions; $CPU, $([ "$use_proot" = 1 ] && echo proot || echo chroot))" > "$result"
}

summary=() failed=0
for suite in "${suites[@]}"; do
    result=$(mktemp)
    # a subshell per suite, so one failing does not stop the next; errexit must stay in
    # force inside it, which it would not in a condition (if, ||), hence set +e around it
    set +e
    (set -e; check_suite "$suite" "$result")
    status=$?
    set -e
    line=$(cat "$result")
    rm -f "$result"
    if [ "$status" -ne 0 ] || [ "${line#"$suite PASS"}" = "$line" ]; then
        failed=1
        line="${line:-$suite FAIL} [exit $status]"
    fi
    summary+=("$line")
done
echo
echo "== arm64 check summary =="
printf '%s\n' "${summary[@]}"
exit "$failed"
