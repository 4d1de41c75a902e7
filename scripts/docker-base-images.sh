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

SUITE=bookworm
WORK=$(mktemp -d /var/tmp/doorward-rootfs.XXXXXX)
# Shared .deb cache so the second debootstrap does not download everything again.
CACHE=/var/cache/doorward-debootstrap
mkdir -p "$CACHE"
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

# Use the same Debian mirror apt already uses on this machine (deb822 *.sources
# or one-line *.list); fall back to the public redirector.
MIRROR=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
            grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
              | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break }}'
          } | grep -E '/debian/?$' | head -n1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
echo "mirror: $MIRROR"

exists() { [[ $FORCE == 0 ]] && docker image inspect "$1" >/dev/null 2>&1; }

# debootstrap a minbase rootfs into $1 with extra packages $2, configure apt
# like the official images (main + updates + security), and drop caches.
bootstrap() {
  local dir=$1 include=$2
  debootstrap --variant=minbase --cache-dir="$CACHE" --include="$include" \
    "$SUITE" "$dir" "$MIRROR"
  cat >"$dir/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
  # As in the official images: no apt package caches (/var/cache/apt/*.bin is
  # ~80 MB after an `apt-get update`) and no translation indexes in layers.
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin \
         "$dir"/var/log/* "$dir"/tmp/*
}

# --- debian:bookworm-slim --------------------------------------------------
# Runtime base: libc only, plus ca-certificates because doorward reads the
# system roots (rustls-native-certs) for https upstreams / OIDC discovery.
if exists debian:bookworm-slim; then
  echo "debian:bookworm-slim exists, skipping (use --force to rebuild)"
else
  bootstrap "$WORK/slim" ca-certificates
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
# Build base: a C toolchain (ring compiles C/asm with gcc), pkg-config, git,
# and this machine's Rust toolchain laid out like the official image
# (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo).
if exists rust:1-bookworm; then
  echo "rust:1-bookworm exists, skipping (use --force to rebuild)"
else
  R="$WORK/rust"
  bootstrap "$R" build-essential,pkg-config,ca-certificates,git,curl
  RUSTUP_SRC=${RUSTUP_HOME:-/root/.rustup}
  CARGO_SRC=${CARGO_HOME:-/root/.cargo}
  # Only the default toolchain (not nightly etc.), and no registry cache.
  TC=$(sed -n 's/^default_toolchain = "\(.*\)"/\1/p' "$RUSTUP_SRC/settings.toml")
  TC_DIR=$(readlink -f "$RUSTUP_SRC/toolchains/$TC")
  mkdir -p "$R/usr/local/rustup/toolchains" "$R/usr/local/cargo"
  cp -a "$RUSTUP_SRC/settings.toml" "$R/usr/local/rustup/"
  cp -a "$TC_DIR" "$R/usr/local/rustup/toolchains/$TC"
  cp -a "$CARGO_SRC/bin" "$R/usr/local/cargo/bin"   # rustup + relative proxy symlinks
  chmod -R a+w "$R/usr/local/rustup" "$R/usr/local/cargo"  # as the official image does
  cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"
  tar -C "$R" -c . | docker import \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    - rust:1-bookworm
  rm -rf "$R"
fi

# Smoke-check both images.
docker run --rm --network host debian:bookworm-slim sh -c 'test -s /etc/ssl/certs/ca-certificates.crt && cat /etc/debian_version'
docker run --rm --network host rust:1-bookworm sh -c 'cargo --version && rustc --version && gcc --version | head -n1'
docker images --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E '^(debian:bookworm-slim|rust:1-bookworm)'
