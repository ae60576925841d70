# syntax=docker/dockerfile:1
#
# The edge-gateway container image, for machines with a container engine
# (BuildKit, the default since Docker 23, for the cache mounts):
#
#   docker build -t edge-gateway:0.1.0 .
#   kind load docker-image edge-gateway:0.1.0
#
# Without one (as on the project's build machines), scripts/build-image.sh
# builds the same image with buildah, and CI checks that one
# (tests/image/test.sh), including that this file declares the same
# entrypoint, user, ports and labels. Both lay out the root filesystem with
# scripts/image-rootfs.sh:
#
#   /usr/local/bin/edge-gateway  the entrypoint, with the file capability
#                                cap_net_bind_service (ports 80/443 as uid 101
#                                when the container keeps NET_BIND_SERVICE,
#                                as the chart's does; BuildKit's COPY keeps
#                                the xattr: `getcap` shows it in the image)
#   /usr/local/bin/demo-model    the model server charts/model-serving runs
#   /usr/local/lib/libmimalloc.so  for the chart's controller.enableMimalloc
#   glibc, libgcc_s, libm and the loader; CA certificates; /etc/passwd and
#   /etc/group with uid/gid 101; /tmp. No shell, no package manager.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates libcap2-bin libmimalloc2.0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# aws-lc-rs (rustls' crypto) builds with the image's gcc; no cmake needed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p edge-gateway -p demo-model \
    && install -D -m 0755 target/release/edge-gateway /out/bin/edge-gateway \
    && install -D -m 0755 target/release/demo-model /out/bin/demo-model \
    && scripts/image-rootfs.sh /out/bin /rootfs

FROM scratch
ARG REVISION=unknown
COPY --from=build /rootfs/ /
LABEL org.opencontainers.image.title="edge-gateway" \
      org.opencontainers.image.description="A Rust drop-in replacement for the NGINX Ingress Controller, for model serving" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/usr/local/bin
WORKDIR /
USER 101:101
# HTTP and HTTPS as the chart runs them, the admin port (/healthz,
# /metrics), and the admission webhook.
EXPOSE 80 443 10254 8443
ENTRYPOINT ["/usr/local/bin/edge-gateway"]
