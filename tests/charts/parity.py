"""Every value of ingress-nginx's chart is honoured or refused, never ignored.

    python3 parity.py HELM CHART UPSTREAM_VALUES TABLE VALUES_MD [--write]

UPSTREAM_VALUES is ingress-nginx's values.yaml (tests/charts/upstream/).
Its leaf values (a scalar, a list, or an empty map; non-empty maps are walked)
must each be covered by TABLE (parity.yaml) or lie under one of its
`owned_elsewhere` prefixes. For each key of TABLE:

  honoured  `helm template` with the key set to `probe` (on top of `with`)
            renders something else than without it, and the change is the
            key's: `find` regexes must match changed lines, else a changed
            line must name the key's last segment in its path and carry the
            probe's value. Lines look like
            `+Deployment/eg-edge-gateway-controller:spec.replicas=3`.
  refused   `helm template` with the probe fails and its message names the key.

VALUES_MD (charts/edge-gateway/VALUES.md) is generated from TABLE; --write
rewrites it, otherwise it must be up to date. Prints one line per failure and
the counts; exits 1 on any failure. Needs PyYAML.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

RELEASE, NAMESPACE = "eg", "ingress-nginx"


def leaves(value, path=()):
    """Leaf paths of a values tree, as ingress-nginx's values.yaml counts them."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from leaves(child, path + (str(key),))
    else:
        yield path


def nest(path, value):
    out = value
    for key in reversed(path):
        out = {key: out}
    return out


def merge(into, other):
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def flatten(value, path, out):
    """`path=value` lines; list items keyed by their name, scalar lists as sets."""
    if isinstance(value, dict):
        for key, child in value.items():
            flatten(child, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                flatten(item, f"{path}[{item.get('name', i)}]", out)
            else:
                flatten(item, f"{path}[]", out)
    else:
        out.add(f"{path}={json.dumps(value)}")


class Renderer:
    """`helm template` runs, each set of values once, several at a time."""

    def __init__(self, helm, chart, work):
        self.helm, self.chart, self.work = helm, chart, Path(work)
        self.cache = {}

    def prepare(self, value_sets):
        todo = {json.dumps(v, sort_keys=True): v for v in value_sets}
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            for key, result in zip(todo, pool.map(self._run, enumerate(todo.values()))):
                self.cache[key] = result

    def render(self, values):
        """(ok, lines or error text) for these values."""
        return self.cache[json.dumps(values, sort_keys=True)]

    def _run(self, numbered):
        number, values = numbered
        path = self.work / f"values-{number}.yaml"
        path.write_text(yaml.safe_dump(values))
        run = subprocess.run([self.helm, "template", RELEASE, self.chart, "--namespace", NAMESPACE, "-f", str(path)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            return (False, run.stderr)
        lines = set()
        for doc in yaml.safe_load_all(run.stdout):
            if doc:
                fields = set()
                flatten(doc, "", fields)
                prefix = f"{doc['kind']}/{doc['metadata']['name']}:"
                lines |= {prefix + line for line in fields}
        return (True, lines)


def literal(value):
    return value if isinstance(value, str) else json.dumps(value)


def scalars(value):
    if isinstance(value, dict):
        for child in value.values():
            yield from scalars(child)
    elif isinstance(value, list):
        for child in value:
            yield from scalars(child)
    else:
        yield value


def effect_found(path, probe, spec, diff):
    """Why the diff does not show the key's effect, or None."""
    if "find" in spec:
        finds = spec["find"] if isinstance(spec["find"], list) else [spec["find"]]
        missing = [f for f in finds if not any(re.search(f, line) for line in diff)]
        return f"no changed line matches {missing}" if missing else None
    if not diff:
        return "nothing changed"
    last = path[-1].lower()
    if isinstance(probe, bool):
        ok = any(last in line.split(":", 1)[1].split("=", 1)[0].lower() and line.endswith("=" + json.dumps(probe)) for line in diff)
        return None if ok else f"no changed line with {path[-1]}={json.dumps(probe)}"
    if isinstance(probe, (dict, list)):
        added = [line for line in diff if line.startswith("+")]
        missing = [s for s in scalars(probe) if not isinstance(s, bool) and not any(literal(s) in line.split("=", 1)[1] for line in added)]
        return f"values {missing} appear in no added line" if missing else None
    ok = any(last in line.split(":", 1)[1].split("=", 1)[0].lower() and literal(probe) in line.split("=", 1)[1] for line in diff)
    return None if ok else f"no changed line with {path[-1]} = {literal(probe)}"


def probed_values(path, spec):
    """The values with the key set to its probe (on top of `with`)."""
    return merge(json.loads(json.dumps(spec.get("with", {}))), nest(path, spec["probe"]))


def specs_of(entry):
    return entry if isinstance(entry, list) else [entry]


def main():
    helm, chart, upstream_file, table_file, values_md = sys.argv[1:6]
    write = "--write" in sys.argv[6:]
    upstream = yaml.safe_load(open(upstream_file))
    table = yaml.safe_load(open(table_file))
    owned = table.get("owned_elsewhere", {})
    keys = table["keys"]
    by_name = {".".join(p): p for p in leaves(upstream)}
    failures = []

    # Coverage: every upstream leaf is in the table or owned elsewhere.
    for name in by_name:
        under = [o for o in owned if name == o or name.startswith(o + ".")]
        if name not in keys and not under:
            failures.append(f"{name}: an ingress-nginx value neither honoured nor refused (add it to parity.yaml)")
        if name in keys and under:
            failures.append(f"{name}: both in keys and owned elsewhere ({under[0]})")
    for name in keys:
        if name not in by_name:
            failures.append(f"{name}: in parity.yaml but not a value of ingress-nginx's chart")

    probes = [(name, by_name[name], spec) for name, entry in keys.items() if name in by_name for spec in specs_of(entry)]
    with tempfile.TemporaryDirectory() as work:
        r = Renderer(helm, chart, work)
        bases = [spec.get("base", spec.get("with", {})) for _, _, spec in probes if spec["status"] == "honoured"]
        r.prepare(bases + [probed_values(path, spec) for _, path, spec in probes])
        for name, path, spec in probes:
            base_values = spec.get("base", spec.get("with", {}))
            ok, probe_out = r.render(probed_values(path, spec))
            if spec["status"] == "refused":
                mention = spec.get("mentions", name)
                if ok:
                    failures.append(f"{name}={json.dumps(spec['probe'])}: refused in parity.yaml, but helm template succeeds")
                elif mention not in probe_out:
                    failures.append(f"{name}: helm template fails without naming {mention}: {probe_out.strip()[-300:]}")
                continue
            base_ok, base_out = r.render(base_values)
            if not base_ok:
                failures.append(f"{name}: the render without the probe fails: {base_out.strip()[-300:]}")
                continue
            if not ok:
                failures.append(f"{name}={json.dumps(spec['probe'])}: helm template fails: {probe_out.strip()[-300:]}")
                continue
            diff = sorted({"+" + line for line in probe_out - base_out} | {"-" + line for line in base_out - probe_out})
            why = effect_found(path, spec["probe"], spec, diff)
            if why:
                shown = "\n      ".join(diff[:12])
                failures.append(f"{name}={json.dumps(spec['probe'])}: silently ignored? {why}; changed:\n      {shown}")

    counts = {"honoured": 0, "refused": 0}
    for name in by_name:
        if name in keys:
            counts[specs_of(keys[name])[0]["status"]] += 1
    elsewhere = sum(1 for n in by_name if n not in keys)
    summary = (f"{len(by_name)} values: {counts['honoured']} honoured, {counts['refused']} refused, "
               f"{elsewhere} owned elsewhere ({', '.join(owned)})")
    doc = values_doc(by_name, keys, owned, summary)
    if write:
        Path(values_md).write_text(doc)
    elif Path(values_md).read_text() != doc:
        failures.append(f"{values_md} is out of date: run python3 tests/charts/parity.py ... --write (tests/charts/test.sh prints the command)")

    for failure in failures:
        print(f"  FAIL {failure}")
    print(f"ingress-nginx chart: {summary}; {len(probes)} probes in {len(r.cache)} renders")
    sys.exit(1 if failures else 0)


def values_doc(by_name, keys, owned, summary):
    lines = [
        "# ingress-nginx chart values in charts/edge-gateway",
        "",
        "<!-- Generated by tests/charts/parity.py from tests/charts/parity.yaml; do not edit. -->",
        "",
        "Every value of ingress-nginx's chart (v4.15.1, `charts/ingress-nginx/values.yaml`) and what this",
        "chart does with it. **honoured**: rendered with ingress-nginx's meaning. **refused**: any",
        "setting but the inert one the note names stops `helm install` with a message naming the value",
        "and what to do instead. tests/charts/test.sh checks each row by rendering the chart with the",
        "value set (parity.py).",
        "",
        f"{summary}.",
        "",
        "| value | here | note |",
        "|---|---|---|",
    ]
    for name in by_name:
        if name in keys:
            spec = specs_of(keys[name])[0]
            note = spec.get("note", "")
            lines.append(f"| `{name}` | {spec['status']} | {note} |")
        else:
            prefix = next(o for o in owned if name == o or name.startswith(o + "."))
            lines.append(f"| `{name}` | owned elsewhere | {owned[prefix]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
