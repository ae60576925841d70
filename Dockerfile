# syntax=docker/dockerfile:1
#
# The edge-gateway container image: the gateway (/usr/local/bin/edge-gateway,
# the entrypoint) and the demo model server (/usr/local/bin/demo-model, which
# charts/model-serving runs by default).
#
# NOT BUILT IN CI: the project's build machines have no container engine (no
# Docker daemon, no Podman or Buildah), so this file has never been built
# there; charts/ and tests/charts/ are tested without it. Build it where an
# engine runs (BuildKit, the default since Docker 23, for the cache mounts):
#
#   docker build -t edge-gateway:0.1.0 .
#   kind load docker-image edge-gateway:0.1.0     # a kind cluster, then
#   scripts/install-ingress-controller.sh        # the charts' default image
#
# Runtime: distroless (glibc and libgcc, CA certificates, no shell, no package
# manager), as uid/gid 101 (ingress-nginx's www-data), so it runs under the
# chart's securityContext: runAsNonRoot, readOnlyRootFilesystem, every
# capability dropped. It therefore cannot bind ports below 1024: the chart
# runs it on 8080/8443 (--http-port/--https-port) behind Service ports 80/443.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# aws-lc-rs (rustls' crypto) builds with the image's gcc; no cmake needed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p edge-gateway -p demo-model \
    && install -D -m 0755 target/release/edge-gateway /out/edge-gateway \
    && install -D -m 0755 target/release/demo-model /out/demo-model

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="edge-gateway" \
      org.opencontainers.image.description="A Rust drop-in replacement for the NGINX Ingress Controller, for model serving" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ /usr/local/bin/
USER 101:101
# HTTP and HTTPS as the chart runs them, and the admin port (/healthz, /metrics).
EXPOSE 8080 8443 10254
ENTRYPOINT ["/usr/local/bin/edge-gateway"]
