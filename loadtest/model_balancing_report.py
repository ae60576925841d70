#!/usr/bin/env python3
"""Tables and plots for loadtest/model-balancing.sh.

Reads the run folders the script wrote (RESULTS/<scenario>-<algorithm>/ with
oha.json, latencies.txt.gz, replicas.prom, meta.json, gateway-log-summary.txt), writes
RESULTS/results.md and RESULTS/*.png (plots only when matplotlib imports),
and with --record replaces the section between the model-balancing markers
in the given Markdown file (created if missing), leaving the rest alone.

Latency percentiles count every request sent: a request that failed (error,
timeout, non-2xx) counts as infinitely slow, so a percentile above the
success rate reads "fail". Latencies run from the scheduled start (oha
--latency-correction) to the last byte.
"""

import argparse
import datetime
import gzip
import json
import math
import os
import re
import shutil
import sys

BEGIN = "<!-- model-balancing:begin -->"
END = "<!-- model-balancing:end -->"
ALGORITHM_ORDER = ["round_robin", "ewma", "least_request", "p2c", "peak_ewma"]
ANCHOR_A = {"round_robin": "≈95%", "least_request": "≈99% (least-loaded)", "p2c": "≈99% (least-loaded)",
            "peak_ewma": "≈99.9%", "ewma": "—"}
SCENARIO_TITLES = {
    "a": "a. linkerd's classic, scaled down: 11 replicas ~167 ms, one stuck at 2 s",
    "b": "b. 8 replicas × 4 slots, one 5× slower, SSE streams",
    "c": "c. scale from zero: requests held until the EndpointSlice appears",
}


def load_run(path):
    run = {"dir": path}
    with open(os.path.join(path, "meta.json")) as f:
        run["meta"] = json.load(f)
    with open(os.path.join(path, "oha.json")) as f:
        run["oha"] = json.load(f)
    run["responses"] = []
    with gzip.open(os.path.join(path, "latencies.txt.gz"), "rt") as f:
        for line in f:
            status, millis = line.split()
            run["responses"].append((int(status), float(millis) / 1e3))
    run["replicas"] = parse_replicas(os.path.join(path, "replicas.prom"))
    run["diagnostics"] = diagnostics(os.path.join(path, "gateway-log-summary.txt"))
    return run


def parse_replicas(path):
    """[(address, profile, admitted, rejected)] from the replicas' /metrics."""
    replicas = []
    with open(path) as f:
        for line in f:
            if line.startswith("# replica "):
                _, _, address, profile = line.split()
                replicas.append([address, profile, 0, 0])
            elif line.startswith("fake_model_requests_total") and replicas:
                replicas[-1][2] = int(float(line.split()[-1]))
            elif line.startswith("fake_model_rejected_total") and replicas:
                replicas[-1][3] = int(float(line.split()[-1]))
    return replicas


def diagnostics(path):
    """Gateway log lines about the annotations this benchmark sets."""
    found = []
    if not os.path.exists(path):
        return found
    with open(path) as f:
        for line in f:
            if re.search(r"load-balance|hold-when-no-endpoints|max-pending", line):
                text = re.sub(r"\x1b\[[0-9;]*m", "", line.strip())
                if text not in found:
                    found.append(text)
    return found[:5]


def summarize(run):
    """The figures of one run."""
    oha = run["oha"]
    errors = sum(oha.get("errorDistribution", {}).values())
    responses = run["responses"]
    total = len(responses) + errors
    meta = run["meta"]
    limit = 1.0 if meta["scenario"] == "a" else math.inf
    ok = sorted(s for status, s in responses if 200 <= status < 300 and s <= limit)
    all_latencies = ok + [math.inf] * (total - len(ok))
    summary = {
        "total": total,
        "ok": len(ok),
        "success": len(ok) / total if total else 0.0,
        "errors": errors,
        "non2xx": sum(1 for status, _ in responses if not 200 <= status < 300),
        "timeouts": sum(n for k, n in oha.get("errorDistribution", {}).items() if "timeout" in k.lower()),
        "failures": failures(oha, responses, limit),
        "p50": percentile(all_latencies, 50),
        "p99": percentile(all_latencies, 99),
        "p999": percentile(all_latencies, 99.9),
        "max_ok": ok[-1] if ok else math.inf,
        "min_ok": ok[0] if ok else math.inf,
        "ttfb_p99": oha.get("firstBytePercentiles", {}).get("p99"),
        "cpu": meta.get("gateway_cpu_seconds"),
        "load": meta.get("load_average"),
        "latencies": ok,
    }
    admitted = sum(r[2] for r in run["replicas"])
    odd = [r for r in run["replicas"] if r[1] in ("stuck", "slow")]
    summary["odd_share"] = sum(r[2] for r in odd) / admitted if admitted and odd else None
    summary["rejected"] = sum(r[3] for r in run["replicas"])
    return summary


def failures(oha, responses, limit):
    """What the failed requests got: "503×200, timeout×3"."""
    counts = {}
    for status, seconds in responses:
        if not 200 <= status < 300:
            counts[str(status)] = counts.get(str(status), 0) + 1
        elif seconds > limit:
            counts[f"{status} after {limit:g} s"] = counts.get(f"{status} after {limit:g} s", 0) + 1
    for error, n in oha.get("errorDistribution", {}).items():
        counts[error] = counts.get(error, 0) + n
    text = ", ".join(f"{k}×{n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return text or "none"


def percentile(sorted_values, p):
    if not sorted_values:
        return math.inf
    index = min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[max(index, 0)]


def ms(seconds):
    if seconds is None:
        return "—"
    if math.isinf(seconds):
        return "fail"
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:.1f} ms"


def pct(fraction, digits=2):
    return "—" if fraction is None else f"{fraction * 100:.{digits}f}%"


def table_a(runs):
    lines = ["| algorithm | requests | success ≤ 1 s | anchor | timeouts | p50 | p99 | p99.9 | "
             "stuck replica's share | gateway CPU | load |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for algorithm, s in runs:
        lines.append(f"| {algorithm} | {s['total']} | **{pct(s['success'])}** | {ANCHOR_A.get(algorithm, '—')} | "
                     f"{s['timeouts']} | {ms(s['p50'])} | {ms(s['p99'])} | {ms(s['p999'])} | "
                     f"{pct(s['odd_share'], 1)} | {s['cpu']:.1f} s | {load(s)} |")
    return lines


def load(s):
    return "—" if s["load"] is None else f"{s['load']:.1f}"


def table_b(runs):
    base = dict(runs).get("round_robin")
    lines = ["| algorithm | requests | success ≤ 10 s | p50 | p99 | p99 vs round robin | p99.9 | "
             "TTFB p99 | slow replica's share | replica 503s | gateway CPU | load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for algorithm, s in runs:
        ratio = "—"
        if base and not math.isinf(s["p99"]) and not math.isinf(base["p99"]):
            ratio = f"{s['p99'] / base['p99']:.2f}×"
        elif base and math.isinf(base["p99"]) and not math.isinf(s["p99"]):
            ratio = "< (rr fails)"
        lines.append(f"| {algorithm} | {s['total']} | **{pct(s['success'])}** | {ms(s['p50'])} | "
                     f"**{ms(s['p99'])}** | {ratio} | {ms(s['p999'])} | {ms(s['ttfb_p99'])} | "
                     f"{pct(s['odd_share'], 1)} | {s['rejected']} | {s['cpu']:.1f} s | {load(s)} |")
    return lines


def table_c(runs, start):
    lines = ["| algorithm | requests | failed | failures | first answer | p50 | p99 | last answer | "
             "added latency p50 (minus the start time) | load |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for algorithm, s in runs:
        failed = s["total"] - s["ok"]
        added = "—" if math.isinf(s["p50"]) else f"{(s['p50'] - start) * 1e3:+.0f} ms"
        lines.append(f"| {algorithm} | {s['total']} | **{failed}** | {s['failures']} | {ms(s['min_ok'])} | "
                     f"{ms(s['p50'])} | {ms(s['p99'])} | {ms(s['max_ok'])} | {added} | {load(s)} |")
    return lines


def verdicts(scenario, runs, meta):
    """Met/missed lines against the issue's goals and anchors."""
    out = []
    figures = dict(runs)
    if scenario == "a":
        best = max(runs, key=lambda r: r[1]["success"])
        out.append(f"- Goal ≥ 99.9% success within 1 s: best {best[0]} {pct(best[1]['success'])} → "
                   f"**{'met' if best[1]['success'] >= 0.999 else 'missed'}**.")
        if "round_robin" in figures:
            rr = figures["round_robin"]["success"]
            out.append(f"- Round robin {pct(rr)} vs the anchor ≈95% (the stuck replica gets 1/11 of the "
                       f"traffic for {meta['a_stuck_for_ms'] / 1000:g} s of {meta['a_duration']} s: "
                       f"expected ≈{100 - 100 / 11 * meta['a_stuck_for_ms'] / 1000 / meta['a_duration']:.1f}%).")
    if scenario == "b" and "round_robin" in figures:
        rr = figures["round_robin"]["p99"]
        for algorithm, s in runs:
            if algorithm == "round_robin":
                continue
            if math.isinf(s["p99"]):
                verdict = "missed (p99 is a failure)"
            elif math.isinf(rr) or s["p99"] <= 0.5 * rr:
                verdict = "met"
            else:
                verdict = "missed"
            success = "met" if s["success"] >= 0.999 else "missed"
            out.append(f"- {algorithm}: goal p99 ≤ 0.5× round robin ({ms(s['p99'])} vs {ms(rr)}) → **{verdict}**; "
                       f"goal ≥ 99.9% success ({pct(s['success'])}) → **{success}**.")
    if scenario == "c":
        for algorithm, s in runs:
            failed = s["total"] - s["ok"]
            out.append(f"- {algorithm}: {failed} failed of {s['total']} → "
                       f"**{'met' if failed == 0 else 'missed'}** (goal: zero errors).")
    return out


def plots(results, by_scenario):
    """PNG plots; returns {scenario: [file names]}."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not available: no plots", file=sys.stderr)
        return {}
    made = {}
    for scenario, runs in by_scenario.items():
        names = []
        if scenario == "a":
            fig, ax = plt.subplots(figsize=(7, 3.6))
            labels = [a for a, _ in runs]
            values = [s["success"] * 100 for _, s in runs]
            ax.bar(labels, values, color="#4c72b0")
            for y, text in ((95, "rr anchor 95%"), (99, "least-loaded 99%"), (99.9, "peak EWMA 99.9%")):
                ax.axhline(y, color="grey", linestyle=":", linewidth=1)
                ax.text(-0.45, y, text, fontsize=7, va="bottom", ha="left", color="grey")
            ax.set_ylim(max(0, min(values + [94]) - 1), 100.2)
            ax.set_ylabel("success within 1 s (%)")
            ax.set_title("a. one replica stuck at 2 s: success within a 1 s timeout")
            for i, v in enumerate(values):
                ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
            names.append(save(fig, results, "a-success.png"))
        if scenario == "b":
            fig, ax = plt.subplots(figsize=(7, 3.6))
            width = 0.2
            for k, (key, label) in enumerate((("p50", "p50"), ("p99", "p99"), ("p999", "p99.9"), ("ttfb_p99", "TTFB p99"))):
                xs = [i + (k - 1.5) * width for i in range(len(runs))]
                ys = [finite_ms(s[key]) for _, s in runs]
                ax.bar(xs, ys, width, label=label)
            ax.set_xticks(range(len(runs)), [a for a, _ in runs])
            ax.set_yscale("log")
            ax.set_ylabel("ms (failures drawn at the 10 s timeout)")
            ax.set_title("b. 8 replicas × 4 slots, one 5× slower (SSE)")
            ax.set_ylim(top=ax.get_ylim()[1] * 3)
            ax.legend(fontsize=8, ncol=4, loc="upper center")
            names.append(save(fig, results, "b-latency.png"))
        if not any(s["latencies"] for _, s in runs):
            made[scenario] = names
            continue
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for algorithm, s in runs:
            values = s["latencies"]
            if not values:
                continue
            ys = [(i + 1) / s["total"] * 100 for i in range(len(values))]
            ax.plot([v * 1e3 for v in values], ys, label=algorithm, linewidth=1.2)
        ax.set_xscale("log")
        ax.set_xlabel("latency, ms (scheduled start to last byte)")
        ax.set_ylabel("% of requests done (successes)")
        ax.set_title(SCENARIO_TITLES[scenario], fontsize=9)
        ax.grid(True, which="both", linewidth=0.3)
        ax.legend(fontsize=8)
        names.append(save(fig, results, f"{scenario}-latency-cdf.png"))
        plt.close("all")
        made[scenario] = names
    return made


def finite_ms(seconds, cap=10.0):
    if seconds is None:
        return 0
    return (cap if math.isinf(seconds) else seconds) * 1e3


def save(fig, results, name):
    fig.tight_layout()
    fig.savefig(os.path.join(results, name), dpi=110)
    return name


def markdown(args, by_scenario, images, image_prefix, heading):
    meta = next(iter(by_scenario.values()))[0][2]["meta"]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"{heading} Model-aware balancing (issue 9)", ""]
    if args.quick == "true":
        lines += ["**Quick mode (a smoke run of a few seconds per scenario): not a measurement.**", ""]
    lines += [
        f"- Date: {date}",
        f"- Machine: {args.machine}",
        f"- Revision: {args.revision}",
        f"- Command: `{args.command}`",
        "- Setup: release `edge-gateway` pinned to CPU 0 (`taskset -c 0`, `--access-log off`); fake replicas "
        "(`demo-model --config`, one process) and open-loop `oha` (keep-alive, `--latency-correction`) on CPU 1. "
        "Fresh replicas and gateway for every run. Latency percentiles count failures as infinitely slow "
        "(\"fail\" = beyond the success rate); TTFB p99 is oha's, over completed responses. \"load\" is the "
        "machine's 1-minute load average at the end of the run: above ~2, other processes shared the two CPUs "
        "and latencies are inflated.",
        "",
    ]
    for scenario in sorted(by_scenario):
        runs = [(a, s) for a, s, _ in by_scenario[scenario]]
        lines += [f"{heading}# {SCENARIO_TITLES[scenario]}", ""]
        if scenario == "a":
            lines += [f"{meta['a_rate']} req/s for {meta['a_duration']} s, JSON POST, `oha -t 1s`; replica "
                      f"127.0.2.1 answers in 2 s for {meta['a_stuck_for_ms'] / 1000:g} s of the run, the 10 "
                      "others lognormal median 167 ms, p99 179 ms, no concurrency limit.", ""]
            lines += table_a(runs)
        elif scenario == "b":
            lines += [f"{meta['b_rate']} req/s for {meta['b_duration']} s, `GET .../stream` (SSE), `oha -t 10s`; "
                      "each replica 4 slots and a FIFO queue of 256, TTFT lognormal median 40 ms p99 120 ms, "
                      "10 ms per token, 10–50 tokens; replica 127.0.3.1 5× slower (capacity ≈ 87 req/s in all).", ""]
            lines += table_b(runs)
        else:
            lines += [f"{meta['c_requests']} requests at once (`oha -n {meta['c_requests']} -c {meta['c_requests']}`), "
                      f"`edge-gateway.io/hold-when-no-endpoints: 60s`; the EndpointSlice (2 replicas, 20 ms) is written "
                      f"{meta['c_start']} s after the load starts (the folder is polled every 250 ms).", ""]
            lines += table_c(runs, meta["c_start"])
        lines += [""] + verdicts(scenario, runs, meta)
        if scenario in ("a", "b"):
            n = 11 if scenario == "a" else 8
            lines.append(f"- The {'stuck' if scenario == 'a' else 'slow'} replica's share is counted by the "
                         f"replicas: 1/{n} = {100 / n:.1f}% means the traffic was split evenly (round robin "
                         "behaviour, also what an algorithm the gateway does not know yet falls back to).")
        notes = sorted({d for _, _, run in by_scenario[scenario] for d in run["diagnostics"]})
        if notes:
            lines += ["", "Gateway log lines about these annotations (count, line):", ""]
            lines += [f"    {n[:240]}" for n in notes]
        for name in images.get(scenario, []):
            lines += ["", f"![{name}]({image_prefix}{name})"]
        lines.append("")
    lines.append(f"Raw oha JSON, per-request latencies, replica counts and gateway logs: `{args.results}/`.")
    return "\n".join(lines) + "\n"


def record(path, section):
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    block = f"{BEGIN}\n{section}{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail.lstrip("\n")
    else:
        if not text:
            text = "# Load-test results\n\n"
        text = text.rstrip("\n") + "\n\n" + block
    with open(path, "w") as f:
        f.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--machine", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--quick", default="false")
    parser.add_argument("--record", help="Markdown file whose model-balancing section is replaced")
    args = parser.parse_args()

    by_scenario = {}
    with open(os.path.join(args.results, "runs.txt")) as f:
        names = [line.strip() for line in f if line.strip()]
    for name in names:
        run = load_run(os.path.join(args.results, name))
        scenario, algorithm = run["meta"]["scenario"], run["meta"]["algorithm"]
        by_scenario.setdefault(scenario, []).append((algorithm, summarize(run), run))
    for runs in by_scenario.values():
        runs.sort(key=lambda r: ALGORITHM_ORDER.index(r[0]) if r[0] in ALGORITHM_ORDER else 99)

    images = plots(args.results, {k: [(a, s) for a, s, _ in v] for k, v in by_scenario.items()})
    text = markdown(args, by_scenario, images, "", "#")
    with open(os.path.join(args.results, "results.md"), "w") as f:
        f.write(text)
    print(text)
    if args.record:
        # The results folder is not kept in git; the plots the record shows are.
        plots_dir = os.path.join(os.path.dirname(os.path.abspath(args.record)), "plots", "model-balancing")
        os.makedirs(plots_dir, exist_ok=True)
        for names in images.values():
            for name in names:
                shutil.copy(os.path.join(args.results, name), plots_dir)
        record(args.record, markdown(args, by_scenario, images, "plots/model-balancing/", "##"))
        print(f"recorded in {args.record}")


if __name__ == "__main__":
    main()
