# doorward container image.
#   docker build -t doorward .
#   docker run -p 4180:4180 -v ./doorward.toml:/etc/doorward/doorward.toml:ro doorward
# Plain Dockerfile syntax (no BuildKit-only features) so it also builds with
# the legacy builder. TLS is rustls (gcc for ring); SAML's XML signatures are
# libxmlsec1's (headers and libclang to build the bindings, the libraries
# at run time).

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libxml2-dev libxmlsec1-dev libssl-dev libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Dependencies first, against a dummy main.rs, so this (slow) layer is reused
# as long as Cargo.toml / Cargo.lock do not change.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && cargo build --release --locked \
 && rm -rf src

# The real sources (migrations are embedded at compile time by sqlx::migrate!).
# COPY keeps the files' original mtimes, which can be older than the dummy
# build; touch them so cargo really rebuilds the doorward crate.
COPY migrations ./migrations
COPY src ./src
RUN find src -type f -exec touch {} + \
 && cargo build --release --locked \
 && cp target/release/doorward /usr/local/bin/doorward

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim

# doorward uses the system trust store (rustls-native-certs) for https
# upstreams and identity providers (the official slim image lacks it), and
# libxmlsec1 with its OpenSSL engine for SAML signatures.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libxmlsec1 libxmlsec1-openssl libxml2 libssl3 \
 && rm -rf /var/lib/apt/lists/*

# Fixed uid/gid so volume ownership is predictable across rebuilds.
RUN groupadd --gid 10001 doorward \
 && useradd --uid 10001 --gid doorward --no-create-home --no-log-init \
      --home-dir /var/lib/doorward --shell /usr/sbin/nologin doorward \
 && mkdir -p /etc/doorward /var/lib/doorward \
 && chown doorward:doorward /var/lib/doorward

COPY --from=build /usr/local/bin/doorward /usr/local/bin/doorward
COPY config.example.toml /etc/doorward/doorward.toml

WORKDIR /var/lib/doorward
USER doorward
EXPOSE 4180

# No curl in the image: the binary probes its own /_doorward/healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/doorward", "healthcheck", "--config", "/etc/doorward/doorward.toml"]

ENTRYPOINT ["/usr/local/bin/doorward"]
CMD ["serve", "--config", "/etc/doorward/doorward.toml"]
