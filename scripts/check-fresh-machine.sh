#!/usr/bin/env bash
# The README's first command on a fresh machine, to a ready server.
#
# Makes a Debian 12 root with debootstrap that holds what the official
# rust:slim-bookworm image holds besides Rust (ca-certificates, gcc,
# libc6-dev: rustc needs a C linker), gives it this machine's Rust toolchain
# (bind-mounted read-only at the path it has here) and an empty CARGO_HOME,
# and runs, in this checkout (bind-mounted at the path it has here),
#
#   bash scripts/serve.sh
#
# exactly as README.md writes it: it installs libclang and g++ with apt inside
# the root, downloads the crates, builds and starts the server. Passes when
# /health/ready answers 200 on :8080; prints how long each part took.
#
#   bash scripts/check-fresh-machine.sh [--share-registry]
#
# The checkout must not have a target/ directory (a clean clone): the build
# starts from nothing. Because the toolchain and the checkout keep their paths,
# the target/ it leaves behind is one the host's cargo reuses; .ci/run runs this
# first so the rest of CI builds on it instead of compiling twice.
# --share-registry copies the crates it downloaded into this machine's
# CARGO_HOME afterwards (CI: saves downloading them again).
#
# Needs root (debootstrap, chroot, mounts) and the network (deb.debian.org,
# crates.io). ORBIT_FRESH_TIMEOUT: seconds to wait for ready (default 5400).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
share_registry=0
case "${1:-}" in
    --share-registry) share_registry=1 ;;
    "") ;;
    *) echo "usage: $0 [--share-registry]" >&2; exit 2 ;;
esac
die() { echo "check-fresh-machine: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, bind mounts)"
[ -e "$repo/target" ] && die "$repo/target exists: run this in a clean clone (the build must start from nothing)"
timeout_s="${ORBIT_FRESH_TIMEOUT:-5400}"
case "$timeout_s" in ''|*[!0-9]*) die "ORBIT_FRESH_TIMEOUT=$timeout_s: want a number of seconds" ;; esac
if curl -s -o /dev/null --max-time 2 http://127.0.0.1:8080/; then
    die "something already listens on 127.0.0.1:8080, where serve.sh's server will"
fi

# Bind mounts are what the check is made of; a machine that refuses them (an
# unprivileged container) cannot run it. Say so loudly rather than fail the
# product for the machine (ORBIT_FRESH_REQUIRED=1 makes it a failure).
probe="$(mktemp -d)"
mkdir -p "$probe/a" "$probe/b"
if mount --bind "$probe/a" "$probe/b" 2>/dev/null; then
    umount "$probe/b"; rm -rf "$probe"
else
    rm -rf "$probe"
    [ "${ORBIT_FRESH_REQUIRED:-0}" = 1 ] && die "this machine refuses bind mounts"
    echo "check-fresh-machine: SKIPPED: this machine refuses bind mounts (not a result about serve.sh)" >&2
    exit 0
fi

sysroot="$(rustc --print sysroot)"
rust_version="$(rustc --version)"
if ! command -v debootstrap >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
        || die "apt-get install debootstrap failed"
fi

root="$(mktemp -d "${TMPDIR:-/tmp}/orbit-fresh.XXXXXX")"
# serve.sh keeps its data in ./data; remove it afterwards only if this run made it.
had_data=0
[ -e "$repo/data" ] && had_data=1
mounts=()
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -TERM -- "-$server_pid" 2>/dev/null || true
        sleep 2
        kill -KILL -- "-$server_pid" 2>/dev/null || true
    fi
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount -l "${mounts[$i]}" 2>/dev/null || true
    done
    # Only once nothing is mounted inside it: a bind mount's files are the
    # host's own (the checkout, the toolchain, /dev).
    local still=""
    for m in "${mounts[@]}"; do
        if mountpoint -q "$m" 2>/dev/null; then still="$m"; fi
    done
    if [ -z "$still" ] && ! grep -q " $root/" /proc/mounts; then
        rm -rf "$root"
    else
        echo "check-fresh-machine: $root still has mounts (${still:-see /proc/mounts}); left in place" >&2
    fi
    [ "$had_data" = 1 ] || rm -rf "$repo/data"
}
trap cleanup EXIT
bind() { # bind SOURCE TARGET_IN_ROOT [ro]
    mkdir -p "$root$2"
    mount --bind "$1" "$root$2"
    mounts+=("$root$2")
    if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$root$2"; fi
}

t0=$(date +%s)
echo "== debootstrap: Debian 12 minbase + ca-certificates gcc libc6-dev"
debootstrap --variant=minbase --include=ca-certificates,gcc,libc6-dev bookworm "$root" \
    http://deb.debian.org/debian > "$root.debootstrap.log" 2>&1 \
    || { tail -20 "$root.debootstrap.log" >&2; die "debootstrap failed (log above)"; }
rm -f "$root.debootstrap.log"
t1=$(date +%s)
echo "   $((t1 - t0)) s"

# The network's own settings, which any machine on it has: DNS, and the
# certificate authorities this machine trusts locally (an egress proxy's, here).
cp /etc/resolv.conf "$root/etc/resolv.conf"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the root"
fi
mount -t proc proc "$root/proc"; mounts+=("$root/proc")
bind /sys /sys ro
bind /dev /dev
bind "$sysroot" "$sysroot" ro
bind "$repo" "$repo"
mkdir -p "$root/root/.cargo"

# What the root has before the command runs: no libclang, no g++.
chroot "$root" /bin/sh -c 'command -v g++ || ls /usr/lib/llvm-*/lib/libclang*.so* 2>/dev/null' \
    && die "the fresh root already has g++ or libclang: it would not show what serve.sh installs"

echo "== bash scripts/serve.sh (inside the root; $rust_version)"
log="$root/serve.log"
setsid chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb \
    PATH="$sysroot/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    /bin/bash -c "cd '$repo' && exec bash scripts/serve.sh" > "$log" 2>&1 &
server_pid=$!
ready=""
while [ $(( $(date +%s) - t1 )) -lt "$timeout_s" ]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        tail -40 "$log" >&2
        die "scripts/serve.sh exited before the server was ready (last lines above)"
    fi
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:8080/health/ready || true)
    if [ "$code" = 200 ]; then ready=1; break; fi
    sleep 5
done
t2=$(date +%s)
[ -n "$ready" ] || { tail -40 "$log" >&2; die "no 200 from /health/ready within $timeout_s s (last lines above)"; }
echo "   ready after $((t2 - t1)) s: $(curl -s http://127.0.0.1:8080/health/ready)"
grep -E "Setting up (libclang-dev|g\+\+) |Finished .release." "$log" | sed 's/^/   /' || true

if [ "$share_registry" = 1 ]; then
    dest="${CARGO_HOME:-$HOME/.cargo}/registry"
    mkdir -p "$dest"
    cp -an "$root/root/.cargo/registry/." "$dest/"
fi
echo "check-fresh-machine: passed (debootstrap $((t1 - t0)) s, serve.sh to ready $((t2 - t1)) s)"
