# Builds the root filesystems of the local stand-ins for Debian's base images
# (debian:bookworm-slim and rust:1-bookworm). Sourced by
# scripts/docker-base-images.sh, which imports them as docker images, and by
# scripts/fresh-machine-check.sh, which runs a newcomer's commands in the
# rust one: one definition, so the image and the proof cannot drift.
#
# Needs root and debootstrap. Downloaded .debs are cached in
# $DEBIAN_ROOTFS_CACHE (only the packages, never an installed system).

DEBIAN_ROOTFS_SUITE=bookworm
DEBIAN_ROOTFS_CACHE=${DEBIAN_ROOTFS_CACHE:-/var/cache/doorward-debootstrap}
# What the rust:1-bookworm stand-in holds besides minbase: a C toolchain
# (ring compiles C/asm with gcc), pkg-config, git and curl, as the official
# image (buildpack-deps) does.
DEBIAN_ROOTFS_RUST_PACKAGES=build-essential,pkg-config,ca-certificates,git,curl

# The Debian mirror apt already uses on this machine (deb822 *.sources or
# one-line *.list); the public redirector when there is none.
debian_rootfs_mirror() {
  local mirror
  mirror=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
              grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break }}'
            } | grep -E '/debian/?$' | head -n1 || true)
  echo "${mirror:-http://deb.debian.org/debian}"
}

# debootstrap a minbase root into $1 with extra packages $2 (comma-separated),
# configure apt like the official images (main + updates + security, no
# package caches, no translations) and drop caches and logs.
debian_rootfs_bootstrap() {
  local dir=$1 include=$2 mirror
  mirror=$(debian_rootfs_mirror)
  mkdir -p "$DEBIAN_ROOTFS_CACHE"
  debootstrap --variant=minbase --cache-dir="$DEBIAN_ROOTFS_CACHE" --include="$include" \
    "$DEBIAN_ROOTFS_SUITE" "$dir" "$mirror"
  cat >"$dir/etc/apt/sources.list" <<EOF
deb $mirror $DEBIAN_ROOTFS_SUITE main
deb $mirror $DEBIAN_ROOTFS_SUITE-updates main
deb http://deb.debian.org/debian-security $DEBIAN_ROOTFS_SUITE-security main
EOF
  # As in the official images: /var/cache/apt/*.bin is ~80 MB after an
  # `apt-get update`, and layers carry no translation indexes.
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

# The environment of the rust:1-bookworm image (its ENV lines).
DEBIAN_ROOTFS_RUST_ENV=(
  RUSTUP_HOME=/usr/local/rustup
  CARGO_HOME=/usr/local/cargo
  PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
)

# The rust:1-bookworm root in $1: Debian with the packages above and this
# machine's default Rust toolchain laid out like the official image
# (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo).
debian_rootfs_rust() {
  local dir=$1 rustup_src=${RUSTUP_HOME:-/root/.rustup} cargo_src=${CARGO_HOME:-/root/.cargo}
  local toolchain toolchain_dir
  debian_rootfs_bootstrap "$dir" "$DEBIAN_ROOTFS_RUST_PACKAGES"
  # Only the default toolchain (not nightly etc.), and no registry cache.
  toolchain=$(sed -n 's/^default_toolchain = "\(.*\)"/\1/p' "$rustup_src/settings.toml")
  toolchain_dir=$(readlink -f "$rustup_src/toolchains/$toolchain")
  mkdir -p "$dir/usr/local/rustup/toolchains" "$dir/usr/local/cargo"
  cp -a "$rustup_src/settings.toml" "$dir/usr/local/rustup/"
  cp -a "$toolchain_dir" "$dir/usr/local/rustup/toolchains/$toolchain"
  cp -a "$cargo_src/bin" "$dir/usr/local/cargo/bin"   # rustup + relative proxy symlinks
  chmod -R a+w "$dir/usr/local/rustup" "$dir/usr/local/cargo"  # as the official image does
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
}
