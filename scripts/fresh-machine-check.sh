#!/usr/bin/env bash
# Proves README's two commands on a fresh machine: in a root with only Debian
# and Rust (the rust:1-bookworm stand-in, built by scripts/lib/debian-rootfs.sh
# exactly as scripts/docker-base-images.sh builds the image), a clone of the
# current commit (committed files only: what a newcomer has) runs
# scripts/demo.sh, signs alice in through it headlessly, stops it, and runs
# scripts/test.sh --lib (the whole scripts/test.sh with --full). The steps
# inside are scripts/lib/fresh-machine-inside.sh.
#
# Where: with a working Docker engine, `docker run --rm --network host` on the
# rust:1-bookworm image (built by scripts/docker-base-images.sh when missing);
# otherwise the same root filesystem under unshare (mount and PID namespaces)
# and chroot, with the host's network, resolv.conf and apt sources. Only the
# debootstrap .debs are cached; every run starts from Debian + Rust.
#
# Usage: scripts/fresh-machine-check.sh [--full] [--keep]
#   --full   run the whole scripts/test.sh, not only its unit tests
#   --keep   leave the root (chroot mode) under /var/tmp for a look after
# Full logs: /var/tmp/doorward-fresh-logs/<time>/. Needs root; debootstrap
# and unshare (util-linux) for the chroot mode. Builds run under nice.
set -euo pipefail
cd "$(dirname "$0")/.."
full="" keep=false
for arg in "$@"; do
  case "$arg" in
    --full) full=--full ;;
    --keep) keep=true ;;
    *) echo "usage: $0 [--full] [--keep]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "needs root (debootstrap, chroot or docker)" >&2; exit 1; }
source scripts/lib/debian-rootfs.sh

started=$SECONDS
step() { printf '\n== %s (at %dm%02ds)\n' "$1" $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }

commit=$(git rev-parse HEAD)
logs=/var/tmp/doorward-fresh-logs/$(date -u +%Y%m%dT%H%M%SZ)
work=$(mktemp -d /var/tmp/doorward-fresh.XXXXXX)
mkdir -p "$logs"
# The output is also kept whole, for docs/fresh-machine-check.md.
exec > >(tee "$logs/check.log") 2>&1
if docker info >/dev/null 2>&1; then mode=docker; else mode=chroot; fi

# Nothing is mounted on the host side (the chroot's mounts live and die in
# its own mount namespace); refuse to delete a root something is mounted in.
cleanup() {
  local status=$?
  if [ -d "$work" ]; then
    if findmnt -rn -o TARGET | grep -q "^$work"; then
      echo "left $work: something is still mounted in it" >&2
    elif $keep; then
      echo "kept the root: $work/root"
    else
      rm -rf --one-file-system "$work"
    fi
  fi
  exit "$status"
}
trap cleanup EXIT

step "fresh-machine check: mode $mode, commit ${commit:0:12}"
echo "logs: $logs"
if ! git diff --quiet HEAD; then
  echo "note: the work tree has uncommitted changes; the check clones the commit, without them"
fi
# The demo listens on fixed ports of the host's network.
for port in 3000 4180 4181; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is taken on this machine; the demo needs it" >&2
    exit 1
  fi
done

step "clone the commit (committed files only)"
git clone --quiet --no-checkout "$(git rev-parse --path-format=absolute --git-common-dir)" "$work/doorward"
git -C "$work/doorward" checkout --quiet --detach "$commit"
echo "cloned ${commit:0:12} ($(git -C "$work/doorward" ls-files | wc -l) files)"

inside=/opt/fresh-check/fresh-machine-inside.sh
if [ "$mode" = docker ]; then
  step "rust:1-bookworm image"
  docker image inspect rust:1-bookworm >/dev/null 2>&1 || scripts/docker-base-images.sh
  step "run in a container (docker run --rm --network host rust:1-bookworm)"
  docker run --rm --network host \
    -v "$work/doorward:/src/doorward" -v "$PWD/scripts/lib:/opt/fresh-check:ro" -v "$logs:/fresh-logs" \
    -e FRESH_ELAPSED=$((SECONDS - started)) rust:1-bookworm nice -n 15 bash "$inside" $full
  step "fresh-machine check passed (mode docker, commit ${commit:0:12})"
  exit 0
fi

root=$work/root
step "root filesystem: Debian $DEBIAN_ROOTFS_SUITE minbase + $DEBIAN_ROOTFS_RUST_PACKAGES + Rust (debootstrap, cached .debs)"
debian_rootfs_rust "$root" >"$logs/debootstrap.log" 2>&1 || { tail -n 30 "$logs/debootstrap.log"; exit 1; }
grep -E '^I: (Valid Release signature|Base system installed successfully)' "$logs/debootstrap.log" || true
echo "root: $(du -sh --one-file-system "$root" | cut -f1), $(ls "$root/usr/local/rustup/toolchains")"
# A chroot has the host's network: its resolver and apt sources too.
cp /etc/resolv.conf "$root/etc/resolv.conf"
if [ -n "$(ls /etc/apt/sources.list.d/ 2>/dev/null)" ] || [ -s /etc/apt/sources.list ]; then
  rm -f "$root/etc/apt/sources.list"
  [ -s /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/"
  cp -a /etc/apt/sources.list.d/. "$root/etc/apt/sources.list.d/"
fi
mkdir -p "$root/src" "$root/opt/fresh-check" "$root/fresh-logs"
mv "$work/doorward" "$root/src/doorward"
cp scripts/lib/fresh-machine-inside.sh scripts/lib/fresh-machine-login.py "$root/opt/fresh-check/"

step "run in the root (unshare --mount --pid --fork --mount-proc, chroot)"
# The inner shell mounts /proc, /dev, /sys and a tmpfs /tmp in its private
# mount namespace, and unmounts them when the run ends however it ends; the
# PID namespace ends every process left when its first process exits.
status=0
unshare --mount --pid --fork --mount-proc --propagation private \
  bash -c '
    set -eu
    root=$1; shift
    unmount() { for m in tmp sys dev proc; do umount -R -l "$root/$m" 2>/dev/null || true; done; }
    trap unmount EXIT
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t sysfs sysfs "$root/sys" 2>/dev/null || mount --rbind -o ro /sys "$root/sys"
    mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
    env -i HOME=/root TERM=dumb LANG=C.UTF-8 "$@" \
      chroot "$root" nice -n 15 bash /opt/fresh-check/fresh-machine-inside.sh '"$full"'
  ' fresh-check "$root" "${DEBIAN_ROOTFS_RUST_ENV[@]}" FRESH_ELAPSED=$((SECONDS - started)) || status=$?
cp -a "$root/fresh-logs/." "$logs/" 2>/dev/null || true
if [ "$status" -ne 0 ]; then
  step "fresh-machine check FAILED (exit $status; mode chroot, commit ${commit:0:12}); logs: $logs"
  exit "$status"
fi
step "fresh-machine check passed (mode chroot, commit ${commit:0:12})"
