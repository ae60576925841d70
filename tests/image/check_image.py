"""Checks the edge-gateway image archive that scripts/build-image.sh made.

    python3 check_image.py inspect ARCHIVE ROOTFS DOCKERFILE
        the archive as `docker load` / `kind load image-archive` read it (one
        tag, config, layers), its config (entrypoint, user 101, ports,
        labels) against the Dockerfile's, and unpacks the layers into ROOTFS
        with their file capabilities.
    python3 check_image.py run ROOTFS MANIFESTS CHART_REFUSALS_TPL
        inside a private network namespace (unshare --net): runs the binaries
        from ROOTFS as the chart's container runs them (chroot, uid 101,
        capabilities NET_BIND_SERVICE only, no_new_privs): --version, then the
        demo on ports 80 and 443 (the file capability at work), a request
        through it, mimalloc preloaded, and the served metric names against
        the chart's list (the PrometheusRule check in
        charts/edge-gateway/templates/_refusals.tpl).

Prints one line per check and exits 1 if any failed.
"""

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request

failures = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + str(detail)}")
    if not ok:
        failures.append(name)
    return ok


def dockerfile_config(path):
    """ENTRYPOINT, USER, EXPOSE and LABEL of the Dockerfile's final stage."""
    text = re.sub(r"\\\n\s*", " ", open(path).read())
    final = text[text.rindex("\nFROM "):]
    config = {"labels": {}, "ports": set()}
    for line in final.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENTRYPOINT":
            config["entrypoint"] = json.loads(rest)
        elif word == "USER":
            config["user"] = rest.strip()
        elif word == "EXPOSE":
            config["ports"] |= {p if "/" in p else p + "/tcp" for p in rest.split()}
        elif word == "LABEL":
            for key, value in re.findall(r'([\w.-]+)="([^"]*)"', rest):
                config["labels"][key] = value
    return config


def inspect(archive, rootfs, dockerfile):
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        check("one image in the archive, tagged docker.io/library/edge-gateway:<version>",
              len(manifest) == 1 and re.fullmatch(r"docker\.io/library/edge-gateway:\d+\.\d+\.\d+", manifest[0]["RepoTags"][0] or "")
              and len(manifest[0]["RepoTags"]) == 1, manifest)
        image = manifest[0]
        config = json.load(tar.extractfile(image["Config"]))
        c = config["config"]
        check("linux/amd64", (config.get("os"), config.get("architecture")) == ("linux", "amd64"), config.get("architecture"))
        check("entrypoint /usr/local/bin/edge-gateway", c.get("Entrypoint") == ["/usr/local/bin/edge-gateway"], c.get("Entrypoint"))
        check("user 101:101", c.get("User") == "101:101", c.get("User"))
        ports = set(c.get("ExposedPorts", {}))
        check("ports 80, 443 (the chart's containerPort), 10254 (metrics), 8443 (webhook)",
              ports == {"80/tcp", "443/tcp", "10254/tcp", "8443/tcp"}, ports)
        labels = c.get("Labels", {})
        version = image["RepoTags"][0].rsplit(":", 1)[1]
        check("OCI labels: title, version = the tag, licenses, revision",
              labels.get("org.opencontainers.image.title") == "edge-gateway" and labels.get("org.opencontainers.image.version") == version
              and labels.get("org.opencontainers.image.licenses") == "Apache-2.0" and labels.get("org.opencontainers.image.revision"), labels)
        chart = open(os.path.join(os.path.dirname(dockerfile), "charts/edge-gateway/Chart.yaml")).read()
        check("the charts' default image is this one (appVersion = the tag)", f'appVersion: "{version}"' in chart, version)
        want = dockerfile_config(dockerfile)
        same = (want.get("entrypoint") == c.get("Entrypoint") and want.get("user") == c.get("User") and want["ports"] == ports
                and all(labels.get(k) == v for k, v in want["labels"].items() if k != "org.opencontainers.image.revision")
                and "org.opencontainers.image.revision" in want["labels"])
        check("the Dockerfile declares the same entrypoint, user, ports and labels", same, want)
        check("layers listed in the config and the manifest agree",
              len(config["rootfs"]["diff_ids"]) == len(image["Layers"]) > 0, config["rootfs"])
        shutil.rmtree(rootfs, ignore_errors=True)
        os.makedirs(rootfs)
        for layer in image["Layers"]:
            # GNU tar keeps the security.capability xattr, as docker and containerd do.
            with tar.extractfile(layer) as stream:
                subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-xpf", "-", "-C", rootfs], input=stream.read(), check=True)
    caps = subprocess.run(["getcap", f"{rootfs}/usr/local/bin/edge-gateway"], capture_output=True, text=True).stdout
    check("edge-gateway carries cap_net_bind_service=ep (ports 80/443 as uid 101)", "cap_net_bind_service=ep" in caps, caps)
    passwd = open(f"{rootfs}/etc/passwd").read()
    check("/etc/passwd and /etc/group name uid/gid 101", ":x:101:101:" in passwd and ":x:101:" in open(f"{rootfs}/etc/group").read(), passwd)
    check("/tmp is 1777", oct(os.stat(f"{rootfs}/tmp").st_mode & 0o7777) == "0o1777")
    check("CA certificates", os.path.getsize(f"{rootfs}/etc/ssl/certs/ca-certificates.crt") > 100_000)
    for binary in ("edge-gateway", "demo-model", "../../../lib/x86_64-linux-gnu/libmimalloc.so.2"):
        listed = subprocess.run(["chroot", rootfs, "/lib64/ld-linux-x86-64.so.2", "--list", f"/usr/local/bin/{binary}"],
                                capture_output=True, text=True)
        check(f"every library of {os.path.basename(binary)} is in the image", listed.returncode == 0 and "not found" not in listed.stdout,
              listed.stdout + listed.stderr)


CAP_NET_BIND_SERVICE = 10
PR_SET_KEEPCAPS, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 8, 24, 38


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def in_rootfs(rootfs, argv, env=None, keep=(CAP_NET_BIND_SERVICE,), **kw):
    """argv run in ROOTFS as runc runs the chart's container: uid/gid 101,
    capabilities `drop: [ALL]` + `add: keep` (bounding and permitted sets),
    allowPrivilegeEscalation: false (no_new_privs), only `env`."""
    libc = ctypes.CDLL(None, use_errno=True)

    def call(result, what):
        if result != 0:
            raise OSError(ctypes.get_errno(), what)

    def enter():
        os.chroot(rootfs)
        os.chdir("/")
        for cap in range(64):
            if cap not in keep:
                libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # past the last cap: EINVAL, fine
        call(libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "keepcaps")
        os.setgroups([])
        os.setgid(101)
        os.setuid(101)
        data = (CapData * 2)()
        data[0].permitted = sum(1 << cap for cap in keep)
        call(libc.capset(ctypes.byref(CapHeader(0x20080522, 0)), data), "capset")
        call(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    return subprocess.Popen(argv, preexec_fn=enter, env=env or {"PATH": "/usr/local/bin"}, **kw)


def get(url, host=None, deadline=20.0):
    """(status, body) of GET url, retried until the deadline while nothing listens."""
    end = time.monotonic() + deadline
    while True:
        try:
            request = urllib.request.Request(url, headers={"Host": host} if host else {})
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def chart_metrics(refusals_tpl):
    """The metric names the chart lets PrometheusRule rules use."""
    names = re.search(r'\$names := list ([^\n]*?) -\}\}', open(refusals_tpl).read())
    return {"nginx_ingress_controller_" + n for n in re.findall(r'"([a-z_0-9]+)"', names.group(1))}


def until_ok(url, deadline=30.0):
    """The status of GET url once it is 200, or the last one at the deadline (readiness follows the first load)."""
    end = time.monotonic() + deadline
    while True:
        status, _ = get(url, deadline=deadline)
        if status == 200 or time.monotonic() > end:
            return status
        time.sleep(0.1)


def run(rootfs, manifests, refusals_tpl):
    for binary in ("edge-gateway", "demo-model"):
        out = in_rootfs(rootfs, [f"/usr/local/bin/{binary}", "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = out.communicate(timeout=30)[0].decode()
        check(f"{binary} --version runs from the image as uid 101", out.returncode == 0 and text.startswith(binary), text)

    try:
        in_rootfs(rootfs, ["/usr/local/bin/edge-gateway", "--version"], keep=(), stdout=subprocess.DEVNULL).wait(timeout=30)
        started = True
    except PermissionError:
        started = False
    check("without NET_BIND_SERVICE the kernel refuses to run it (why the chart always adds it)", not started)

    # The demo's manifests, where the chrooted process reads them (not part of the image).
    shutil.copytree(manifests, f"{rootfs}/tmp/manifests")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # LD_PRELOAD as the chart sets it with controller.enableMimalloc.
    env = {"PATH": "/usr/local/bin", "LD_PRELOAD": "libmimalloc.so.2", "POD_NAME": "image-test", "POD_NAMESPACE": "ingress-nginx"}
    log = open(f"{rootfs}/../gateway.log", "w")
    gateway = in_rootfs(rootfs, ["/usr/local/bin/edge-gateway", "demo", "--manifests", "/tmp/manifests", "--http-port", "80",
                                 "--https-port", "443", "--metrics-port", "10254", "--enable-metrics"],
                        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        status = until_ok("http://127.0.0.1:10254/healthz")
        check("/healthz on 10254 answers 200 once the manifests are loaded", status == 200, status)
        status, body = get("http://127.0.0.1:80/api/v1/predict/1/health", host="localhost")
        check("a request through port 80 reaches demo model 1", status == 200 and '"model":"1"' in body, f"{status} {body}")
        maps = open(f"/proc/{gateway.pid}/maps").read()
        check("LD_PRELOAD (the chart's enableMimalloc) loads the image's mimalloc", "/lib/x86_64-linux-gnu/libmimalloc.so.2" in maps,
              sorted({line.split()[-1] for line in maps.splitlines() if ".so" in line}))
        _, metrics = get("http://127.0.0.1:10254/metrics")
        served = set(re.findall(r"^(nginx_ingress_controller_[a-zA-Z0-9_]+?)(?:_bucket|_sum|_count)?[{ ]", metrics, re.M))
        allowed = chart_metrics(refusals_tpl)
        check("request metrics are served with --enable-metrics", "nginx_ingress_controller_requests" in served, sorted(served)[:5])
        check("every nginx_ingress_controller_* metric served is on the chart's PrometheusRule list",
              served <= allowed, sorted(served - allowed))
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gateway.kill()
        log.close()
    check("the gateway stops cleanly on SIGTERM", gateway.returncode == 0, gateway.returncode)
    if failures:
        print(open(f"{rootfs}/../gateway.log").read()[-3000:])


def main():
    steps = {"inspect": inspect, "run": run}
    if len(sys.argv) != 5 or sys.argv[1] not in steps:
        sys.exit(__doc__)
    try:
        steps[sys.argv[1]](*sys.argv[2:])
    except Exception as error:  # a check that could not even run is a failure
        check(f"{sys.argv[1]} ran to the end", False, f"{type(error).__name__}: {error}")
        raise
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
