"""Medians, percentiles and the markdown report."""

import statistics

TARGET_NAMES = {"direct": "direct (ceiling)", "vestibule": "Vestibule", "nginx": "nginx", "haproxy": "HAProxy",
                "v-bare": "Vestibule, all off", "v-metrics": "Vestibule, metrics",
                "v-log": "Vestibule, metrics + access log", "v-otlp": "Vestibule, metrics + access log + OTLP"}
TARGET_ORDER = ["direct", "vestibule", "nginx", "haproxy"]


def percentile(sorted_values, pct):
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def number(value, digits=None):
    """A figure for the table: thousands separated, sensible precision."""
    if value is None:
        return "–"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2 if abs(value) >= 1 else 3
    return f"{value:,.{digits}f}"


def ratio(a, b):
    return None if a is None or not b else a / b


def load_tables(results):
    """The summary: for each load and metric the median over repeats per target, and the ratio
    Vestibule/nginx."""
    lines = [
        "| Load | Metric | " + " | ".join(TARGET_NAMES[t] for t in TARGET_ORDER) + " | Vestibule/nginx |",
        "|---|---|" + "---:|" * (len(TARGET_ORDER) + 1),
    ]
    for name, entry in results.items():
        load = entry["load"]
        first = True
        for key, label, better in load.metrics:
            medians = {t: median([run.get(key) for run in entry["runs"].get(t, [])]) for t in TARGET_ORDER}
            cells = [number(medians[t]) if t in entry["runs"] else "" for t in TARGET_ORDER]
            r = ratio(medians["vestibule"], medians["nginx"])
            arrow = "↑" if better == "higher" else "↓" if better == "lower" else ""
            title = f"**{name}**: {load.title}" if first else ""
            lines.append(f"| {title} | {label} {arrow} | " + " | ".join(cells) + f" | {number(r, 2)} |")
            first = False
    return "\n".join(lines)


def variants_table(entry, variants):
    """One row per Vestibule variant of the `observe` load: medians, and the proxy CPU per
    request above the first variant's (everything off)."""
    lines = [
        "| Vestibule variant | flags | req/s ↑ | p50 ms ↓ | p99 ms ↓ | proxy CPU µs/req ↓ | CPU µs/req over all off |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    base = None
    for name, label, flags in variants:
        runs = entry["runs"].get(name, [])
        medians = {key: median([run.get(key) for run in runs]) for key in ("rps", "p50_ms", "p99_ms", "cpu_us")}
        if base is None:
            base = medians["cpu_us"]
        extra = None if medians["cpu_us"] is None or base is None else medians["cpu_us"] - base
        shown = " ".join(flags).replace("{otlp}", "URL")
        lines.append(f"| {label} | `{shown}` | {number(medians['rps'])} | {number(medians['p50_ms'])} | "
                     f"{number(medians['p99_ms'])} | {number(medians['cpu_us'])} | {number(extra, 2)} |")
    return "\n".join(lines)


def runs_table(results):
    """Every measured run, in the order run: the raw figures behind the medians."""
    lines = [
        "| Load | Repeat | Target | req/s | MiB/s | p50 ms | p99 ms | mean ms | errors | proxy CPU % | proxy CPU µs/req | other CPU % |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in results.items():
        for run in entry["order"]:
            lines.append(
                f"| {name} | {run['repeat']} | {TARGET_NAMES[run['target']]} | {number(run.get('rps'))} | "
                f"{number(run.get('mb_s'))} | {number(run.get('p50_ms'))} | {number(run.get('p99_ms'))} | "
                f"{number(run.get('mean_ms'))} | {run.get('errors', 0)} | {number(run.get('cpu_pct'))} | "
                f"{number(run.get('cpu_us'))} | {number(run.get('other_pct'))} |"
            )
    return "\n".join(lines)


def kib_as_mib(kib):
    return None if kib is None else kib / 1024


def _ms(seconds):
    return f"{number(seconds * 1000)} ms"


def _mib(kib):
    return f"{number(None if kib is None else kib / 1024, 1)} MiB"


def _ready(figures):
    each = figures.get("ready_each_s")
    if not each:
        return _ms(figures["ready_s"])
    return f"{_ms(figures['ready_s'])} ({', '.join(number(ready * 1000) for ready in each)})"


def _changes(phase):
    missed = f", {phase['missed']} never routed" if phase["missed"] else ""
    return f"{number(phase['p50'])} / {number(phase['p99'])} / {number(phase['max'])} ms (n={phase['n']}{missed})"


def _settled(figures):
    settled = figures.get("rss_settled_kib")
    return _mib(figures["rss_kib"]) + (f" ({_mib(settled)} 5 s after)" if settled else "")


def scale_section(s):
    v, n, ns = s["vestibule"], s["nginx"], s["nginx-shared"]
    vt = v.get("translation_change_ms") or {}
    first = v["translation_first_us"]
    rows = [
        ("Start to ready (Vestibule: /readyz answers 200, median of its starts; nginx: first answer)",
         _ready(v), _ms(n["routed_s"]), _ms(ns["routed_s"])),
        ("Start to the last Ingress's route answering", _ms(v["routed_s"]), _ms(n["routed_s"]), _ms(ns["routed_s"])),
        ("Memory after start: VmRSS 1 s after the last route answers (Vestibule: and 5 s after; nginx: summed over master + worker)",
         _settled(v), _mib(n["rss_kib"]), _mib(ns["rss_kib"])),
        ("Memory after start: PSS (shared pages counted once)", "–", _mib(n["pss_kib"]), _mib(ns["pss_kib"])),
        ("Memory after the changes: VmRSS (nginx: PSS)", f"{_mib(v['rss_after_kib'])} (peak VmHWM {_mib(v['hwm_after_kib'])})",
         _mib(n["pss_after_kib"]), _mib(ns["pss_after_kib"])),
        ("Translation of the first snapshot (log: translation_us)", f"{number(first / 1000 if first else None)} ms", "–", "–"),
        ("Translation on each change, p50 / p99", f"{number(vt.get('p50'))} / {number(vt.get('p99'))} ms", "–", "–"),
    ]
    for phase, label in (("idle", "without load"), ("loaded", "under wrk load (64 connections)")):
        rows.append((f"Change to routed {label}: p50 / p99 / max", _changes(v[phase]), _changes(n[phase]), _changes(ns[phase])))
    failed = lambda f: f"{f['loaded']['failed']} of {f['loaded']['requests']:,} ({number(f['loaded']['rps'])} req/s)"  # noqa: E731
    rows.append(("Failed requests during the changes under load (socket errors + non-2xx/3xx)", failed(v), failed(n), failed(ns)))
    other = lambda f: f"{number(f.get('other_pct'))}%"  # noqa: E731
    rows.append(("CPU used meanwhile by processes outside the benchmark (100% = one core)", other(v), other(n), other(ns)))
    lines = [
        f"{s['ingresses']:,} Ingresses ({3 * s['ingresses']:,} paths), {s['ingresses']:,} Services with 3 endpoints each. "
        "A change moves one Ingress's /api path to /vN/api in its own file (Vestibule: the watched manifest directory; "
        "nginx: its server's include file, then `nginx -s reload`) and polls the new path, with a new connection every "
        "millisecond, until it answers 200.",
        "",
        "| Figure | Vestibule | nginx, upstream per Service | nginx, one shared upstream |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)
