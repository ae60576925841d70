#!/usr/bin/env bash
# Lays out the edge-gateway image's root filesystem in a folder, from built
# binaries and this (Debian 12) machine's runtime files:
#
#   scripts/image-rootfs.sh BINDIR ROOTFS
#
#   /usr/local/bin/edge-gateway   the entrypoint; file capability
#                                 cap_net_bind_service+ep, so that uid 101
#                                 binds ports 80/443, as ingress-nginx's
#                                 image does. The container must keep
#                                 NET_BIND_SERVICE (the chart's does), else
#                                 the kernel refuses to run the binary.
#   /usr/local/bin/demo-model     the model server charts/model-serving runs
#   /lib/x86_64-linux-gnu/libmimalloc.so.2
#                                 preloaded with the chart's enableMimalloc
#                                 (LD_PRELOAD=libmimalloc.so.2: the file
#                                 capability makes the loader run in secure
#                                 mode, where it preloads only libraries of
#                                 the system directories with the set-user-ID
#                                 bit, and no path with a slash; see ld.so(8))
#   /lib/..., /lib64/...          the shared libraries `ldd` lists (glibc,
#                                 libgcc_s, libm) and the dynamic loader
#   /etc/ssl/certs/ca-certificates.crt, /etc/passwd and /etc/group (root,
#   uid/gid 101 edge-gateway, nobody), /etc/nsswitch.conf, /tmp (1777), and
#   the Debian copyright files of the packages the libraries come from.
#
# Used by scripts/build-image.sh (buildah) and by the Dockerfile, so both
# produce the same layout. Needs ldd, setcap (libcap2-bin), dpkg, and the
# Debian packages ca-certificates and libmimalloc2.0.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BINDIR ROOTFS" >&2
    exit 2
fi
bindir=$1
root=$2
binaries=(edge-gateway demo-model)
mimalloc=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
certs=/etc/ssl/certs/ca-certificates.crt

fail() {
    echo "image-rootfs: $*" >&2
    exit 1
}
for binary in "${binaries[@]}"; do
    [[ -x $bindir/$binary ]] || fail "$bindir/$binary is missing (cargo build --release -p edge-gateway -p demo-model)"
done
[[ -e $mimalloc ]] || fail "$mimalloc is missing: apt-get install -y libmimalloc2.0"
[[ -s $certs ]] || fail "$certs is missing: apt-get install -y ca-certificates"
command -v setcap >/dev/null || fail "setcap is missing: apt-get install -y libcap2-bin"
command -v strip >/dev/null || fail "strip is missing: apt-get install -y binutils"

rm -rf "$root"
mkdir -p "$root"/{usr/local/bin,etc/ssl/certs,tmp}
chmod 1777 "$root/tmp"

# Debug info stays out of the image (a tenth of the size; symbol names stay,
# so backtraces still name functions).
for binary in "${binaries[@]}"; do
    install -m 0755 "$bindir/$binary" "$root/usr/local/bin/$binary"
    strip --strip-debug "$root/usr/local/bin/$binary"
done
setcap cap_net_bind_service=+ep "$root/usr/local/bin/edge-gateway"
mkdir -p "$root/lib/x86_64-linux-gnu"
install -m 4644 "$(readlink -f "$mimalloc")" "$root/lib/x86_64-linux-gnu/libmimalloc.so.2"

# Every shared object the binaries and mimalloc load, at the path the loader
# looks for it (the file itself, not the symlink), plus its package's
# copyright file.
mapfile -t libraries < <(
    ldd "$root/usr/local/bin/edge-gateway" "$root/usr/local/bin/demo-model" "$root/lib/x86_64-linux-gnu/libmimalloc.so.2" |
        awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(/ { print $1 }' | sort -u
)
if ldd "$root/usr/local/bin/edge-gateway" | grep -q "not found"; then
    fail "a shared library of edge-gateway is not installed here"
fi
# The Debian package of a file (dpkg knows it by one of its paths, with or
# without /usr since the /usr merge).
package_of() {
    local real
    real=$(readlink -f "$1")
    { dpkg -S "$1" || dpkg -S "$real" || dpkg -S "${real#/usr}"; } 2>/dev/null | head -n 1 | cut -d: -f1
}
packages=(ca-certificates libmimalloc2.0)
for library in "${libraries[@]}"; do
    [[ $library == */libmimalloc.so.2 ]] && continue
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
    package=$(package_of "$library")
    [[ -n $package ]] || fail "no Debian package owns $library"
    packages+=("$package")
done
for package in $(printf '%s\n' "${packages[@]}" | sort -u); do
    install -D -m 0644 "/usr/share/doc/$package/copyright" "$root/usr/share/doc/$package/copyright"
done

install -m 0644 "$certs" "$root/etc/ssl/certs/ca-certificates.crt"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
edge-gateway:x:101:101:edge-gateway:/nonexistent:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
edge-gateway:x:101:
nogroup:x:65534:
EOF
cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
chmod 0644 "$root"/etc/{passwd,group,nsswitch.conf}
