#!/usr/bin/env bash
# Builds the edge-gateway container image without a container engine or a
# registry: buildah (Debian package) from scratch with the release binaries
# and the runtime files they need (scripts/image-rootfs.sh), saved as a
# docker archive that `docker load` and `kind load image-archive` accept.
#
#   scripts/build-image.sh                 # -> edge-gateway.tar, edge-gateway:<version>
#   kind load image-archive edge-gateway.tar
#   docker load -i edge-gateway.tar
#
# Options:
#   --binaries DIR   use edge-gateway and demo-model from DIR instead of
#                    building them (cargo build --release --locked)
#   --output FILE    the archive (default: edge-gateway.tar)
#   --tag NAME:TAG   the image name (default: edge-gateway:<the crate version>,
#                    which the charts' default image names)
#
# The image: entrypoint /usr/local/bin/edge-gateway, user 101:101, ports
# 80/443 (HTTP/HTTPS as the chart runs them), 10254 (/healthz, /metrics) and
# 8443 (admission webhook), OCI labels. The Dockerfile builds the same layout
# where a container engine is at hand. Runs as root (buildah's vfs storage,
# in a temporary folder, removed at the end); installs buildah, libcap2-bin,
# ca-certificates and libmimalloc2.0 from Debian when missing and root.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit "${1:-2}"
}

binaries=""
output=$root/edge-gateway.tar
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
tag=edge-gateway:$version
while [[ $# -gt 0 ]]; do
    case $1 in
    --binaries) binaries=${2:?--binaries needs a folder}; shift 2 ;;
    --output) output=${2:?--output needs a file}; shift 2 ;;
    --tag) tag=${2:?--tag needs NAME:TAG}; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "build-image: unknown option $1" >&2; usage 2 ;;
    esac
done
[[ $tag == *:* ]] || { echo "build-image: --tag must be NAME:TAG" >&2; exit 2; }

log() { printf 'build-image: %s\n' "$*" >&2; }

# Debian packages this needs.
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v setcap >/dev/null || missing+=(libcap2-bin)
command -v strip >/dev/null || missing+=(binutils)
[[ -s /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
[[ -e /usr/lib/x86_64-linux-gnu/libmimalloc.so.2 ]] || missing+=(libmimalloc2.0)
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing ${missing[*]} (Debian)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        log "missing: apt-get install -y ${missing[*]}"
        exit 1
    fi
fi

if [[ -z $binaries ]]; then
    log "cargo build --release --locked -p edge-gateway -p demo-model"
    cargo build --release --locked -p edge-gateway -p demo-model
    binaries=$root/target/release
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
"$root/scripts/image-rootfs.sh" "$binaries" "$rootfs"

bah=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
revision=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
container=$("${bah[@]}" from --quiet scratch)
"${bah[@]}" copy --quiet "$container" "$rootfs/" /
"${bah[@]}" config \
    --entrypoint '["/usr/local/bin/edge-gateway"]' \
    --cmd '' \
    --user 101:101 \
    --workingdir / \
    --env PATH=/usr/local/bin \
    --port 80/tcp --port 443/tcp --port 10254/tcp --port 8443/tcp \
    --label org.opencontainers.image.title=edge-gateway \
    --label "org.opencontainers.image.description=A Rust drop-in replacement for the NGINX Ingress Controller, for model serving" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$revision" \
    --label org.opencontainers.image.licenses=Apache-2.0 \
    "$container"
# A fully qualified name, so that the archive carries exactly one tag
# (docker.io/library/NAME:TAG is what "NAME:TAG" means to docker and kind).
qualified=$tag
first=${tag%%/*}
if [[ $tag != */* ]]; then
    qualified=docker.io/library/$tag
elif [[ $first != *.* && $first != *:* && $first != localhost ]]; then
    qualified=docker.io/$tag
fi
"${bah[@]}" commit --quiet --format docker --timestamp 0 "$container" "$qualified" >/dev/null
rm -f "$output"
"${bah[@]}" push --quiet "$qualified" "docker-archive:$output:$tag"
log "$output: $tag ($(du -h "$output" | cut -f1)); load it with: kind load image-archive $output  (or: docker load -i $output)"
