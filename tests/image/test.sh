#!/usr/bin/env bash
# Builds the container image the way users do (scripts/build-image.sh:
# buildah from scratch, no registry) and checks it without a container
# engine (check_image.py): the archive docker load and kind load
# image-archive read (one tag, config, layers), its entrypoint, user 101,
# ports and labels (and that the Dockerfile declares the same), the
# unpacked root filesystem (file capability, libraries, passwd, /tmp), then
# the binaries run from it with chroot as uid 101 in a private network
# namespace: --version, the demo on ports 80/443 with a request through it,
# mimalloc preloaded, and the metric names against the chart's list.
#
#   bash tests/image/test.sh
#
# The binaries are the debug ones `cargo test` already built (target/debug;
# IMAGE_BINARIES=target/release to check release ones): the packaging and
# runtime files do not depend on the profile, and a release build would cost
# CI several minutes. Needs root (buildah's storage, chroot, unshare).
# Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
started=$SECONDS

binaries=${IMAGE_BINARIES:-}
if [[ -z $binaries ]]; then
    cargo build --locked --quiet -p edge-gateway -p demo-model
    binaries=$root/target/debug
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== scripts/build-image.sh --binaries $binaries"
build_started=$SECONDS
scripts/build-image.sh --binaries "$binaries" --output "$work/edge-gateway.tar"
echo "built in $((SECONDS - build_started)) s; archive $(du -h "$work/edge-gateway.tar" | cut -f1)"

status=0
echo "== the archive and its root filesystem"
python3 tests/image/check_image.py inspect "$work/edge-gateway.tar" "$work/rootfs" "$root/Dockerfile" | tee "$work/out" || status=1
echo "== the binaries, run from it (chroot, uid 101, own network namespace)"
unshare --net --fork python3 tests/image/check_image.py run "$work/rootfs" "$root/examples/manifests" \
    "$root/charts/edge-gateway/templates/_refusals.tpl" | tee -a "$work/out" || status=1

printf '\n%s s in all\n' "$((SECONDS - started))"
printf '%d passed, %d failed\n' "$(grep -c '^ok' "$work/out")" "$(grep -c '^FAIL' "$work/out")"
exit "$status"
