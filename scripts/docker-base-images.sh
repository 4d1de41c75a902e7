#!/usr/bin/env bash
# Build local stand-ins for the two base images the Dockerfile uses
# (debian:bookworm-slim and rust:1-bookworm) on a machine that can reach the
# Debian mirror but not any image registry. The Dockerfile itself is unchanged
# and builds against the real official images elsewhere.
#
# Usage: scripts/docker-base-images.sh [--force]
#   --force   rebuild an image even if it already exists (default: skip it)
# Needs: root, debootstrap, docker (dockerd is started here if not running).
set -euo pipefail

FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

# The root filesystems themselves (debootstrap, .deb cache, toolchain copy).
source "$(dirname "$0")/lib/debian-rootfs.sh"
WORK=$(mktemp -d /var/tmp/doorward-rootfs.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The engine may not be running (no systemd here); start it without touching
# the host firewall or creating a bridge -- all our containers use --network host.
if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd (log: /tmp/dockerd.log)"
  nohup dockerd --iptables=false --bridge=none </dev/null >/tmp/dockerd.log 2>&1 &
  disown
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not come up" >&2; tail -20 /tmp/dockerd.log >&2; exit 1; }
fi

echo "mirror: $(debian_rootfs_mirror)"

exists() { [[ $FORCE == 0 ]] && docker image inspect "$1" >/dev/null 2>&1; }

# --- debian:bookworm-slim --------------------------------------------------
# Runtime base: libc only, plus ca-certificates because doorward reads the
# system roots (rustls-native-certs) for https upstreams / OIDC discovery.
if exists debian:bookworm-slim; then
  echo "debian:bookworm-slim exists, skipping (use --force to rebuild)"
else
  debian_rootfs_bootstrap "$WORK/slim" ca-certificates
  # Same trimming as the official -slim images: drop man pages, docs and
  # translations, and have dpkg keep them out of later apt-get installs.
  cat >"$WORK/slim/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
  find "$WORK/slim/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$WORK/slim/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  rm -rf "$WORK"/slim/usr/share/{man,info,groff}/*
  tar -C "$WORK/slim" -c . | docker import --change 'CMD ["bash"]' - debian:bookworm-slim
  rm -rf "$WORK/slim"
fi

# --- rust:1-bookworm -------------------------------------------------------
# Build base: Debian with a C toolchain and this machine's Rust toolchain
# (debian_rootfs_rust), with the official image's environment.
if exists rust:1-bookworm; then
  echo "rust:1-bookworm exists, skipping (use --force to rebuild)"
else
  R="$WORK/rust"
  debian_rootfs_rust "$R"
  env_changes=()
  for setting in "${DEBIAN_ROOTFS_RUST_ENV[@]}"; do env_changes+=(--change "ENV $setting"); done
  tar -C "$R" -c . | docker import "${env_changes[@]}" --change 'CMD ["bash"]' - rust:1-bookworm
  rm -rf "$R"
fi

# Smoke-check both images.
docker run --rm --network host debian:bookworm-slim sh -c 'test -s /etc/ssl/certs/ca-certificates.crt && cat /etc/debian_version'
docker run --rm --network host rust:1-bookworm sh -c 'cargo --version && rustc --version && gcc --version | head -n1'
docker images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E '^(debian:bookworm-slim|rust:1-bookworm)'
