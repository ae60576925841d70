#!/usr/bin/python3
"""Summarises a loadtest/run.sh results folder: summary.md (tables with
medians, spread and ratios to nginx, the issue-10 targets met or missed)
and PNG plots (req/s, CPU per request, latency percentiles).

    report.py RESULTS_DIR CLOCK_TICKS_PER_SECOND
"""

import json
import os
import re
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OUT = sys.argv[1]
HZ = float(sys.argv[2])

WORKLOADS = {
    "get": "small GET, keep-alive",
    "post1k": "1 KiB POST, keep-alive",
    "get1m": "1 MiB response, keep-alive",
    "newconn": "GET, new connection per request",
    "https": "HTTPS GET, keep-alive (RSA)",
}
PEERS = ["gateway", "nginx", "nginx64k", "haproxy"]
PEER_NAMES = {
    "gateway": "edge-gateway",
    "gateway-bare": "edge-gateway, access log and metrics off",
    "nginx": "nginx (ingress)",
    "nginx64k": "nginx 64k buffers",
    "nginx-nolog": "nginx, access log off",
    "haproxy": "haproxy",
    "direct": "direct (no proxy)",
}
SHORT = {"gateway": "edge-\ngateway", "nginx": "nginx\n(ingress)", "nginx64k": "nginx\n64k", "haproxy": "haproxy"}
COLORS = {"gateway": "#d95f02", "nginx": "#1b9e77", "nginx64k": "#66a61e", "haproxy": "#7570b3"}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values):
    values = [v for v in values if v is not None]
    return (min(values), max(values)) if values else (None, None)


def fmt(value, digits=1):
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


# ------------------------------------------------------------------ load
rows = [line.rstrip("\n").split("\t") for line in open(os.path.join(OUT, "runs.tsv"))][1:]
oha = {}  # (workload, peer) -> list of per-repeat dicts
tls = {}  # (key, peer) -> list
sse = {}  # peer -> list
for repeat, peer, workload, kind, path, ticks, extra in rows:
    cpu = int(ticks) / HZ
    full = os.path.join(OUT, path)
    if kind == "oha":
        report = json.load(open(full))
        codes = report.get("statusCodeDistribution", {})
        total = sum(codes.values())
        ok = sum(n for c, n in codes.items() if c.startswith("2"))
        errors = sum(report.get("errorDistribution", {}).values()) + (total - ok)
        lat = report.get("latencyPercentiles", {})
        oha.setdefault((workload, peer), []).append(
            {
                "repeat": int(repeat),
                "rps": report["summary"]["requestsPerSec"],
                "p50": (lat.get("p50") or 0) * 1e3,
                "p99": (lat.get("p99") or 0) * 1e3,
                "p999": (lat.get("p99.9") or 0) * 1e3,
                "errors": errors,
                "total": total,
                "cpu_us": cpu * 1e6 / total if total else None,
            }
        )
    elif kind == "s_time":
        text = open(full).read()
        m = re.search(r"(\d+) connections in ([\d.]+) real seconds", text)
        conns = int(m.group(1)) if m else 0
        seconds = float(extra or 1)
        tls.setdefault((workload.removeprefix("tls-"), peer), []).append(
            {
                "repeat": int(repeat),
                "rate": conns / seconds,
                "per_cpu": conns / cpu if cpu else None,
                "cpu_us": cpu * 1e6 / conns if conns else None,
                "conns": conns,
            }
        )
    elif kind == "sse":
        text = open(full).read().strip()
        values = dict(kv.split("=", 1) for kv in text.split() if "=" in kv)
        sse.setdefault(peer, []).append(
            {
                "repeat": int(repeat),
                **{k: float(v) for k, v in values.items()},
            }
        )


def agg(runs, key):
    values = [r[key] for r in runs]
    return median(values), spread(values)


def paired_ratio(a_runs, b_runs, key):
    """Per-repeat ratios a/b (same repeat), and the ratio of medians."""
    b_by = {r["repeat"]: r[key] for r in b_runs}
    ratios = [r[key] / b_by[r["repeat"]] for r in a_runs if b_by.get(r["repeat"]) and r[key] is not None]
    ma, mb = median([r[key] for r in a_runs]), median([r[key] for r in b_runs])
    return (ma / mb if ma is not None and mb else None), spread(ratios)


meta = open(os.path.join(OUT, "meta.txt")).read().strip().splitlines()
md = []
md.append("## edge-gateway vs nginx (ingress-nginx config) vs haproxy\n")
md.append("Latest run of `loadtest/run.sh` (one run, peers interleaved per workload in a rotating order; "
          "proxies and the upstream pinned to CPU 0, the client to CPU 1).\n")
for line in meta:
    md.append(f"- {line}")
repeats = max((r["repeat"] for runs in oha.values() for r in runs), default=0)
md.append(f"- medians of {repeats} repeat(s); spread = min..max over repeats; "
          "CPU = the proxy's utime+stime (all threads, /proc/PID/stat) / completed requests; "
          "ratio = median / nginx's median (per-repeat ratio range in brackets)\n")

# ---------------------------------------------------------------- main table
md.append("### Throughput, latency, CPU per request\n")
md.append("| workload | peer | req/s (spread) | p50 ms | p99 ms | p99.9 ms | errors | CPU µs/req (spread) | CPU vs nginx |")
md.append("|---|---|---|---|---|---|---|---|---|")
for workload, label in WORKLOADS.items():
    for peer in PEERS:
        runs = oha.get((workload, peer))
        if not runs:
            continue
        rps, (rlo, rhi) = agg(runs, "rps")
        cpu, (clo, chi) = agg(runs, "cpu_us")
        ratio, (qlo, qhi) = paired_ratio(runs, oha.get((workload, "nginx"), []), "cpu_us")
        ratio_s = "1.00" if peer == "nginx" else (
            f"{ratio:.2f} [{qlo:.2f}..{qhi:.2f}]" if ratio is not None and qlo is not None else "-")
        md.append(
            f"| {label} | {PEER_NAMES[peer]} | {fmt(rps)} ({fmt(rlo)}..{fmt(rhi)}) | "
            f"{fmt(agg(runs, 'p50')[0], 3)} | {fmt(agg(runs, 'p99')[0], 3)} | {fmt(agg(runs, 'p999')[0], 3)} | "
            f"{sum(r['errors'] for r in runs)} | {fmt(cpu)} ({fmt(clo)}..{fmt(chi)}) | {ratio_s} |"
        )
md.append("")

# ---------------------------------------------------------------- TLS
md.append("### Full TLS handshakes (openssl s_time -new, GET /healthz answered by the proxy)\n")
md.append("| key | peer | handshakes/s | handshakes per CPU-second (spread) | CPU µs/handshake | vs nginx (per CPU-s) |")
md.append("|---|---|---|---|---|---|")
for key in ("rsa", "ecdsa"):
    for peer in ("gateway", "nginx", "haproxy"):
        runs = tls.get((key, peer))
        if not runs:
            continue
        per_cpu, (plo, phi) = agg(runs, "per_cpu")
        ratio, (qlo, qhi) = paired_ratio(runs, tls.get((key, "nginx"), []), "per_cpu")
        ratio_s = "1.00" if peer == "nginx" else (
            f"{ratio:.2f} [{qlo:.2f}..{qhi:.2f}]" if ratio is not None and qlo is not None else "-")
        md.append(f"| {'RSA-2048' if key == 'rsa' else 'ECDSA P-256'} | {PEER_NAMES[peer]} | "
                  f"{fmt(agg(runs, 'rate')[0])} | {fmt(per_cpu)} ({fmt(plo)}..{fmt(phi)}) | "
                  f"{fmt(agg(runs, 'cpu_us')[0])} | {ratio_s} |")
md.append("")

# ---------------------------------------------------------------- SSE
md.append("### SSE: time to the first event (new connection per sample; the upstream sends the second event 20 ms later)\n")
md.append("| peer | first event p50 ms | p90 ms | p99 ms | p50 added vs direct ms | failures |")
md.append("|---|---|---|---|---|---|")
direct_p50 = median([r.get("first_p50") for r in sse.get("direct", [])])
for peer in ("direct", "gateway", "nginx", "haproxy"):
    runs = sse.get(peer)
    if not runs:
        continue
    p50 = median([r.get("first_p50") for r in runs])
    added = "-" if peer == "direct" or p50 is None or direct_p50 is None else f"{p50 - direct_p50:+.3f}"
    md.append(f"| {PEER_NAMES[peer]} | {fmt(p50, 3)} | {fmt(median([r.get('first_p90') for r in runs]), 3)} | "
              f"{fmt(median([r.get('first_p99') for r in runs]), 3)} | {added} | "
              f"{int(sum(r.get('failures', 0) for r in runs))} |")
md.append("")

# ---------------------------------------------------------------- figures, RSS, callgrind
figures = {}
try:
    for line in open(os.path.join(OUT, "raw", "figures.txt")):
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "figure":
            figures[parts[1]] = (float(parts[2]), parts[3])
except FileNotFoundError:
    pass
rss = {}
try:
    for line in open(os.path.join(OUT, "raw", "rss-10k.txt")):
        parts = line.replace(":", " ").split()
        if len(parts) >= 2:
            rss[parts[0]] = float(parts[1])
except FileNotFoundError:
    pass
instructions = {}
try:
    for line in list(open(os.path.join(OUT, "callgrind", "summary.tsv")))[1:]:
        peer, workload, done, total, per = line.rstrip("\n").split("\t")
        instructions[(peer, workload)] = float(per)
except FileNotFoundError:
    pass

if figures:
    md.append("### Benchmarks (bench-figures: median of repeated batches, this machine)\n")
    md.append("| figure | value |")
    md.append("|---|---|")
    for name, (value, unit) in figures.items():
        md.append(f"| {name} | {fmt(value, 1)} {unit} |")
    md.append("")
if rss:
    md.append("### Memory with 10,000 Ingresses (edge-gateway, manifests folder, metrics on, after a short load)\n")
    md.append(f"VmRSS {rss.get('VmRSS', 0) / 1024:.1f} MiB, peak (VmHWM) {rss.get('VmHWM', 0) / 1024:.1f} MiB; "
              f"ready (folder read, compiled, published) {rss.get('ready_seconds', 0):.2f} s after start.\n")
if instructions:
    md.append("### Instructions per request (loadtest/callgrind.sh: user space, after warm-up)\n")
    md.append("| peer | small GET | 1 KiB POST | GET vs nginx | POST vs nginx |")
    md.append("|---|---|---|---|---|")
    for peer in ("gateway", "gateway-bare", "nginx", "nginx-nolog", "haproxy"):
        g, p = instructions.get((peer, "get")), instructions.get((peer, "post1k"))
        if g is None and p is None:
            continue
        gn, pn = instructions.get(("nginx", "get")), instructions.get(("nginx", "post1k"))
        md.append(f"| {PEER_NAMES[peer]} | {fmt(g)} | {fmt(p)} | "
                  f"{fmt(g / gn if g and gn else None, 2)} | {fmt(p / pn if p and pn else None, 2)} |")
    md.append("")

    try:
        text = open(os.path.join(OUT, "raw", "callgrind.txt")).read().splitlines()
        block, keep = [], False
        for line in text:
            if line.startswith("edge-gateway, get: inclusive"):
                keep = True
            elif keep and not line.startswith(" "):
                break
            if keep:
                block.append(line)
        if block:
            md.append("Where edge-gateway's instructions go (small GET, inclusive of callees, per request):\n")
            md.append("```")
            md.extend(block[1:])
            md.append("```\n")
    except FileNotFoundError:
        pass

# ---------------------------------------------------------------- targets
def ratio_of(workload, peer, base, key="cpu_us"):
    a, b = oha.get((workload, peer)), oha.get((workload, base))
    if not a or not b:
        return None, (None, None)
    return paired_ratio(a, b, key)


targets = []


def target(name, value, ok, shown):
    if value is None:
        targets.append((name, "not measured", "-"))
    else:
        targets.append((name, shown, "met" if ok else "**missed**"))


for workload, label in (("get", "small GET"), ("post1k", "1 KiB POST")):
    r, (lo, hi) = ratio_of(workload, "gateway", "nginx")
    target(f"CPU/request, {label}, keep-alive ≤ 0.8× nginx", r, r is not None and r <= 0.8,
           f"{r:.2f}× [{lo:.2f}..{hi:.2f}]" if r is not None else "")
    h, (lo, hi) = ratio_of(workload, "gateway", "haproxy")
    target(f"(stretch) CPU/request, {label} ≤ haproxy", h, h is not None and h <= 1.0,
           f"{h:.2f}× haproxy" if h is not None else "")
r, (lo, hi) = ratio_of("get1m", "gateway", "nginx")
target("1 MiB: CPU/response ≤ 0.5× nginx (4k buffers)", r, r is not None and r <= 0.5,
       f"{r:.2f}× [{lo:.2f}..{hi:.2f}]" if r is not None else "")
r, (lo, hi) = ratio_of("get1m", "gateway", "nginx64k")
target("1 MiB: CPU/response ≤ nginx with 64k buffers", r, r is not None and r <= 1.0,
       f"{r:.2f}× [{lo:.2f}..{hi:.2f}]" if r is not None else "")
g_p50 = median([r.get("first_p50") for r in sse.get("gateway", [])])
if g_p50 is not None and direct_p50 is not None:
    added = g_p50 - direct_p50
    g_p99 = median([r.get("first_p99") for r in sse.get("gateway", [])]) or 0
    target("SSE: first event p50 ≤ direct + 0.5 ms; no buffering", added, added <= 0.5 and g_p99 < 20,
           f"+{added:.3f} ms (p50 {g_p50:.3f} vs {direct_p50:.3f} ms; p99 {g_p99:.3f} ms < 20 ms gap)")
else:
    target("SSE: first event p50 ≤ direct + 0.5 ms", None, False, "")
r, (lo, hi) = ratio_of("https", "gateway", "nginx")
target("HTTPS keep-alive: CPU/request ≤ nginx", r, r is not None and r <= 1.0,
       f"{r:.2f}× [{lo:.2f}..{hi:.2f}]" if r is not None else "")
for key, label in (("rsa", "RSA-2048"), ("ecdsa", "ECDSA P-256")):
    a, b = tls.get((key, "gateway")), tls.get((key, "nginx"))
    r, (lo, hi) = paired_ratio(a, b, "per_cpu") if a and b else (None, (None, None))
    target(f"full handshakes per CPU-second ≥ nginx ({label})", r, r is not None and r >= 1.0,
           f"{r:.2f}× [{lo:.2f}..{hi:.2f}]" if r is not None and lo is not None else "")
r, (lo, hi) = ratio_of("newconn", "gateway", "nginx")
target("new connection per request: CPU/connection ≤ nginx", r, r is not None and r <= 1.0,
       f"{r:.2f}× [{lo:.2f}..{hi:.2f}]" if r is not None else "")
for workload, label in (("get", "small GET"), ("post1k", "1 KiB POST")):
    g, n = instructions.get(("gateway", workload)), instructions.get(("nginx", workload))
    r = g / n if g and n else None
    target(f"instructions/request, {label} ≤ 0.8× nginx", r, r is not None and r <= 0.8,
           f"{r:.2f}× ({g:,.0f} vs {n:,.0f})" if r is not None else "")
v = figures.get("lookup_median_mixed_10000ing_1000hosts", (None,))[0]
target("route lookup median ≤ 200 ns at 10,000 Ingresses", v, v is not None and v <= 200,
       f"{v:.0f} ns" if v is not None else "")
v100 = figures.get("lookup_median_mixed_100000ing_10000hosts", (None,))[0]
target("route lookup at 100,000 within 2× of the 200 ns target (≤ 400 ns)", v100,
       v100 is not None and v100 <= 400,
       f"{v100:.0f} ns ({v100 / v:.2f}× the 10k figure)" if v100 is not None and v else "")
v = figures.get("compile_median_10000ing", (None,))[0]
target("compile() of 10,000 Ingresses < 250 ms", v, v is not None and v < 250, f"{v:.0f} ms" if v is not None else "")
v = figures.get("compile_median_100000ing", (None,))[0]
target("compile() of 100,000 Ingresses < 3 s", v, v is not None and v < 3000, f"{v / 1000:.2f} s" if v is not None else "")
v = rss.get("VmRSS")
target("RSS with 10,000 Ingresses ≤ 150 MB", v, v is not None and v * 1024 <= 150e6,
       f"{v * 1024 / 1e6:.0f} MB (peak {rss.get('VmHWM', 0) * 1024 / 1e6:.0f} MB)" if v is not None else "")

md.insert(md.index("### Throughput, latency, CPU per request\n"), "\n".join(
    ["### Issue 10 targets\n", "| target | measured | |", "|---|---|---|"]
    + [f"| {n} | {s} | {m} |" for n, s, m in targets] + [""]))

# ---------------------------------------------------------------- plots
def bars(ax, workload, key, ylabel, log=False):
    peers = [p for p in PEERS if oha.get((workload, p))]
    values = [agg(oha[(workload, p)], key)[0] or 0 for p in peers]
    lows = [agg(oha[(workload, p)], key)[1][0] or 0 for p in peers]
    highs = [agg(oha[(workload, p)], key)[1][1] or 0 for p in peers]
    err = [[v - lo for v, lo in zip(values, lows)], [hi - v for v, hi in zip(values, highs)]]
    ax.bar(range(len(peers)), values, color=[COLORS[p] for p in peers], yerr=err, capsize=3)
    ax.set_xticks(range(len(peers)))
    ax.set_xticklabels([SHORT[p] for p in peers], fontsize=7)
    ax.set_title(WORKLOADS[workload], fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel, fontsize=7)


for key, ylabel, name in (("rps", "requests/s", "rps"), ("cpu_us", "proxy CPU µs / request", "cpu")):
    fig, axes = plt.subplots(1, len(WORKLOADS), figsize=(12, 3.2))
    for ax, workload in zip(axes, WORKLOADS):
        if any(oha.get((workload, p)) for p in PEERS):
            bars(ax, workload, key, ylabel if ax is axes[0] else "")
    fig.suptitle(f"{ylabel} (median, whiskers min..max over repeats)", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, f"proxy-{name}.png"), dpi=72)
    plt.close(fig)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for ax, workload in zip(axes, ("get", "post1k", "https")):
    peers = [p for p in PEERS if oha.get((workload, p))]
    width = 0.8 / max(len(peers), 1)
    for i, peer in enumerate(peers):
        values = [agg(oha[(workload, peer)], k)[0] for k in ("p50", "p99", "p999")]
        ax.bar([x + i * width for x in range(3)], values, width, color=COLORS[peer], label=PEER_NAMES[peer])
    ax.set_xticks([x + width * (len(peers) - 1) / 2 for x in range(3)])
    ax.set_xticklabels(["p50", "p99", "p99.9"], fontsize=7)
    ax.set_yscale("log")
    ax.set_title(WORKLOADS[workload], fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
axes[0].set_ylabel("latency ms (log)", fontsize=7)
axes[0].legend(fontsize=7)
fig.suptitle("latency percentiles (median over repeats; oha, 50 connections)", fontsize=9)
fig.tight_layout()
fig.savefig(os.path.join(OUT, "proxy-latency.png"), dpi=72)
plt.close(fig)

md.append("### Plots\n")
md.append("![requests per second](plots/proxy-rps.png)\n")
md.append("![proxy CPU per request](plots/proxy-cpu.png)\n")
md.append("![latency percentiles](plots/proxy-latency.png)\n")
md.append(f"Raw output: `{os.path.relpath(OUT, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))}` "
          "(oha JSON, s_time, SSE probe, configurations, figures, callgrind).")
open(os.path.join(OUT, "summary.md"), "w").write("\n".join(md) + "\n")
print("\n".join(md))
