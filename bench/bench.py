#!/usr/bin/env python3
"""Vestibule's benchmark: Vestibule, nginx and HAProxy in front of one nginx backend on
127.0.0.1, the same loads in alternation, medians over repeats, and the 10,000-Ingress scale
test. Start it through bench/run.sh, which installs the tools and builds Vestibule first."""

import argparse
import datetime
import os
import platform
import re
import signal
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(BENCH, "lib"))

import report  # noqa: E402
import scale  # noqa: E402
import tools  # noqa: E402
from procs import OtherCpu, Procs, cpu_seconds, wait_until_quiet  # noqa: E402
from setup import OBSERVE_VARIANTS, PLAIN_HOST, TLS_HOST, Setup  # noqa: E402

CONFIG = os.path.join(BENCH, "config")
CONNECTIONS = 64  # every load keeps 64 requests in flight
H2_CONNECTIONS, H2_STREAMS = 4, 16  # 4 connections x 16 streams = 64 in flight
PROXIES = ["vestibule", "nginx", "haproxy"]
ALL = ["direct", *PROXIES]


class Load:
    """One load: what it runs against which targets, and which figures the summary shows."""

    def __init__(self, title, targets, metrics, run):
        self.title, self.targets, self.metrics, self.run = title, targets, metrics, run


RPS = ("rps", "req/s", "higher")
P50 = ("p50_ms", "p50 latency ms", "lower")
P99 = ("p99_ms", "p99 latency ms", "lower")
MEAN = ("mean_ms", "mean latency ms", "lower")
MBS = ("mb_s", "MiB/s", "higher")
CPU = ("cpu_us", "proxy CPU µs per request", "lower")


def plain_wrk(path):
    def run(env, ports, seconds):
        return tools.wrk(f"http://127.0.0.1:{ports['http']}{path}", CONNECTIONS, seconds,
                         host=PLAIN_HOST, cpus=env.client_cpus)
    return run


def tls_wrk(script):
    def run(env, ports, seconds):
        return tools.wrk(f"https://{TLS_HOST}:{ports['https']}/", CONNECTIONS, seconds,
                         script=os.path.join(CONFIG, script), cpus=env.client_cpus)
    return run


def tls_new(env, ports, seconds):
    argv = [env.tlsconns, str(ports["https"]), TLS_HOST, "/", str(CONNECTIONS), str(seconds)]
    argv = ["taskset", "-c", env.client_cpus, *argv] if env.client_cpus else argv
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    fields = dict(re.findall(r"(\w+)=([\d.]+)", out))
    return {"rps": float(fields["rate"]), "requests": int(fields["connections"]),
            "errors": int(fields["errors"]), "p50_ms": float(fields["p50_ms"]),
            "p99_ms": float(fields["p99_ms"])}


def h2(tls):
    def run(env, ports, seconds):
        if tls:
            port = ports["https"]
            return tools.h2load(f"https://{TLS_HOST}:{port}/", H2_CONNECTIONS, H2_STREAMS, seconds,
                                connect_to=f"127.0.0.1:{port}", cpus=env.client_cpus)
        return tools.h2load(f"http://127.0.0.1:{ports['h2c']}/", H2_CONNECTIONS, H2_STREAMS, seconds,
                            host=PLAIN_HOST, cpus=env.client_cpus)
    return run


LOADS = {
    "small": Load("HTTP/1.1 keep-alive, 3-byte body, 64 connections (wrk)", ALL,
                  [RPS, P50, P99, CPU], plain_wrk("/")),
    "16k": Load("HTTP/1.1 keep-alive, 16 KiB body, 64 connections (wrk)", ALL,
                [MBS, RPS, P99, CPU], plain_wrk("/16k")),
    "1m": Load("HTTP/1.1 keep-alive, 1 MiB body, 64 connections (wrk)", ALL,
               [MBS, RPS, P99, CPU], plain_wrk("/1m")),
    "https": Load("HTTPS keep-alive, TLS 1.3, HTTP/1.1, 3-byte body, 64 connections (wrk)", PROXIES,
                  [RPS, P50, P99, CPU], tls_wrk("loopback.lua")),
    "tls-new": Load("New TLS 1.3 connections, full handshake, 1 request each, 64 at a time (bench/tools/tlsconns)",
                    PROXIES,
                    [("rps", "conns/s reached (client-bound, see notes)", "higher"),
                     ("cpu_us", "proxy CPU µs per connection", "lower"),
                     ("capacity", "conns/s per proxy core (10⁶ / CPU µs)", "higher"), P50],
                    tls_new),
    "tls-resumed": Load("New TLS 1.3 connections, resumed session (PSK), 1 request each, 64 at a time (wrk, Connection: close)",
                        PROXIES,
                        [("rps", "conns/s reached", "higher"),
                         ("cpu_us", "proxy CPU µs per connection", "lower"),
                         ("capacity", "conns/s per proxy core (10⁶ / CPU µs)", "higher")],
                        tls_wrk("close.lua")),
    "h2c": Load(f"HTTP/2 cleartext (prior knowledge), {H2_CONNECTIONS} connections x {H2_STREAMS} streams (h2load)", ALL,
                [RPS, MEAN, CPU], h2(tls=False)),
    "h2-tls": Load(f"HTTP/2 over TLS 1.3, {H2_CONNECTIONS} connections x {H2_STREAMS} streams (h2load)", PROXIES,
                   [RPS, MEAN, CPU], h2(tls=True)),
    "observe": Load("HTTP/1.1 keep-alive, 3-byte body, 64 connections (wrk), against Vestibule with its metrics, "
                    "access log and span export turned on one at a time", [name for name, _, _ in OBSERVE_VARIANTS],
                    [RPS, P50, P99, CPU], plain_wrk("/")),
}
#: Loads that compare Vestibule with nginx and HAProxy (the others have their own targets).
COMPARED = [name for name in LOADS if name != "observe"]
STEPS = [*LOADS, "scale", "criterion"]


def log(message):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def measure(env, load, target, seconds):
    """One run of `load` against `target`, with the CPU the proxy used and the CPU that
    processes outside the benchmark used meanwhile."""
    ports = env.targets[target]
    proxy = (lambda: cpu_seconds(ports["pid"])) if ports.get("pid") else (lambda: 0.0)
    other = OtherCpu(env.procs).start()
    proxy0, t0 = proxy(), time.monotonic()
    result = load.run(env, ports, seconds)
    elapsed, used = time.monotonic() - t0, proxy() - proxy0
    result["other_pct"] = other.stop()
    result.pop("text", None)
    if ports.get("pid"):
        result["cpu_pct"] = used / elapsed * 100
        if result.get("requests"):
            result["cpu_us"] = used * 1e6 / result["requests"]
            result["capacity"] = 1e6 / result["cpu_us"] if result["cpu_us"] else None
    return result


DISTURBED = 25  # other processes used more than this % of a core during the run


def run_loads(env, names, seconds, repeats, quiet_wait, patience):
    """Runs every load against its targets, `repeats` times in rotating order. Before each run,
    waits (up to `quiet_wait` s) for the machine to go quiet; a run that other processes
    disturbed anyway is done again, twice at most, while the `patience` budget (seconds spent
    waiting and redoing) lasts. Discarded runs are counted, not kept."""
    results = {}
    budget = {"left": patience, "discarded": 0}
    for name in names:
        load = LOADS[name]
        entry = results[name] = {"load": load, "runs": {t: [] for t in load.targets}, "order": []}
        for target in load.targets:  # warm-up: pools, caches, TCP windows
            load.run(env, env.targets[target], 1)
        for repeat in range(1, repeats + 1):
            # Rotate the order each repeat so no target always runs first or last.
            shift = (repeat - 1) % len(load.targets)
            for target in load.targets[shift:] + load.targets[:shift]:
                for attempt in range(3):
                    if budget["left"] > 0:
                        budget["left"] -= wait_until_quiet(min(quiet_wait, budget["left"]))
                    result = measure(env, load, target, seconds)
                    log(f"{name} #{repeat} {target}: {report.number(result['rps'])} req/s, "
                        f"p99 {report.number(result.get('p99_ms'))} ms, errors {result['errors']}, "
                        f"proxy CPU {report.number(result.get('cpu_pct'))}%, other CPU {report.number(result['other_pct'])}%")
                    if result["other_pct"] <= DISTURBED or attempt == 2 or budget["left"] <= 0:
                        break
                    budget["left"] -= seconds
                    budget["discarded"] += 1
                    log("  disturbed by other processes: discarded, running it again")
                result.update(repeat=repeat, target=target)
                entry["runs"][target].append(result)
                entry["order"].append(result)
    return results, budget["discarded"]


def run_criterion():
    """`cargo bench` of decoding, the translator and the routing table; returns
    (name, low, mid, high) rows as criterion prints them."""
    root = os.path.dirname(BENCH)
    done = subprocess.run(["cargo", "bench", "-p", "vestibule-routing", "-p", "vestibule-translator"],
                          cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"cargo bench failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    # "NAME  time: [...]", or NAME on a line of its own when it is long.
    return re.findall(r"^(\S+)\s+time:\s+\[(\S+ \S+) (\S+ \S+) (\S+ \S+)\]", done.stdout, re.M)


def version(argv, pattern=r"\S+"):
    done = subprocess.run(argv, capture_output=True, text=True)
    text = done.stdout + done.stderr
    match = re.search(pattern, text)
    return match.group(0) if match else text.strip().splitlines()[0]


def header(args):
    with open("/proc/cpuinfo") as file:
        model = re.search(r"model name\s*:\s*(.*)", file.read()).group(1)
    with open("/proc/meminfo") as file:
        mem_gib = int(file.readline().split()[1]) / 1024**2
    pinning = (f"proxy under test on CPU {args.proxy_cpus}; backend nginx and load generator on CPU {args.client_cpus} (taskset)"
               if args.proxy_cpus else "no CPU pinning")
    tools_line = ", ".join([
        version(["nginx", "-v"], r"nginx/\S+"), version(["haproxy", "-v"], r"HAProxy version \S+"),
        version(["wrk", "-v"], r"wrk \S+"), version(["h2load", "--version"], r"nghttp2/\S+"),
        version(["openssl", "version"], r"OpenSSL \S+"),
    ])
    return "\n".join([
        f"- Vestibule built from: {args.commit}",
        f"- Date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Machine: {os.cpu_count()} × {model}, {mem_gib:.0f} GiB, Linux {platform.release()}",
        f"- Tools: {tools_line}",
        f"- Workers: {args.workers} per proxy (nginx `worker_processes {args.workers}`, HAProxy `nbthread {args.workers}`, "
        f"`vestibule --workers {args.workers}`); backend: nginx, 1 worker",
        f"- Pinning: {pinning}",
        "- Vestibule runs as `" + " ".join(["vestibule --log-level warn serve", f"--workers {args.workers}", *args.vestibule_flags]) + "`",
        f"- Each figure is the median of {args.repeats} run(s) of {args.seconds} s, targets in rotating order, after a 1 s warm-up per target",
    ])


def write_report(args, results, scale_result, criterion_rows, started):
    parts = ["# Vestibule benchmark", "", header(args), ""]
    if results:
        compared = {name: entry for name, entry in results.items() if name in COMPARED}
        runs = [run for entry in results.values() for run in entry["order"]]
        disturbed = sum(1 for run in runs if run["other_pct"] > DISTURBED)
        parts += [
            f"- Runs disturbed by processes outside the benchmark (they used more than {DISTURBED}% of a core meanwhile): "
            f"{args.discarded} discarded and run again; {disturbed} of the {len(runs)} kept (see \"other CPU %\" below)",
            "",
        ]
        if compared:
            parts += [
                "## Loads", "",
                "Medians over the repeats. ↑ higher is better, ↓ lower is better. The ratio is Vestibule's median over nginx's. "
                "\"direct\" is wrk/h2load straight to the backend: the ceiling any proxy can reach on this setup.", "",
                report.load_tables(compared), "",
            ]
        if "observe" in results:
            parts += [
                "## Cost of observability", "",
                f"**observe**: {LOADS['observe'].title}. Medians over the repeats; the last column is the proxy CPU per "
                "request above the variant with everything off. The access log goes to /dev/null; spans go to "
                "`bench/tools/otlp_sink.py` on the load generator's CPU.", "",
                report.variants_table(results["observe"], OBSERVE_VARIANTS), "",
            ]
        parts += [
            "## Every run", "",
            "\"other CPU %\" is CPU used meanwhile by processes outside the benchmark (100 = one core): runs with a large "
            "figure were disturbed.", "",
            report.runs_table(results), "",
        ]
    if scale_result:
        parts += ["## Scale (file mode)", "", report.scale_section(scale_result), ""]
    if criterion_rows:
        parts += ["## cargo bench (criterion)", "", "| Benchmark | time (low / estimate / high) |", "|---|---|"]
        parts += [f"| {name} | {low} / {mid} / {high} |" for name, low, mid, high in criterion_rows]
        parts.append("")
    parts.append(f"Total run time: {(time.monotonic() - started) / 60:.1f} min.")
    return "\n".join(parts) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True, help="scratch directory (run.sh makes and removes it)")
    parser.add_argument("--vestibule", required=True, help="the vestibule binary")
    parser.add_argument("--tlsconns", required=True, help="the tlsconns binary")
    parser.add_argument("--commit", default="unknown", help="what the vestibule binary was built from")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 repeat, fewer changes, no criterion")
    parser.add_argument("--only", action="append", choices=STEPS, help="run only this step (repeatable)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=int, help="seconds per run (default 10; 3 with --quick)")
    parser.add_argument("--repeats", type=int, help="runs per target (default 3; 1 with --quick)")
    parser.add_argument("--ingresses", type=int, default=10000)
    parser.add_argument("--quiet-wait", type=float,
                        help="before each run, wait up to this many seconds (default 20; 2 with --quick) "
                             "for other processes to go quiet")
    parser.add_argument("--patience", type=float,
                        help="seconds in all (default 300; 60 with --quick) spent waiting for quiet and "
                             "redoing runs that other processes disturbed")
    parser.add_argument("--out", default=os.path.join(BENCH, "results", "latest.md"))
    args = parser.parse_args()
    args.seconds = args.seconds or (3 if args.quick else 10)
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.quiet_wait is None:
        args.quiet_wait = 2 if args.quick else 20
    if args.patience is None:
        args.patience = 60 if args.quick else 300
    steps = args.only or ([s for s in STEPS if s != "criterion"] if args.quick else STEPS)
    # Pin only when each side fits on its own cores.
    cores = os.cpu_count()
    if args.workers * 2 <= cores:
        args.proxy_cpus = ",".join(str(c) for c in range(args.workers))
        args.client_cpus = ",".join(str(c) for c in range(args.workers, cores))
    else:
        args.proxy_cpus = args.client_cpus = None

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    procs = Procs(args.dir)
    env = Setup(args.dir, procs, args.vestibule, args.workers, args.proxy_cpus, args.client_cpus)
    env.tlsconns = args.tlsconns
    args.vestibule_flags = env.vestibule_flags
    results = scale_result = criterion_rows = None
    try:
        env.start_backend()
        loads = [s for s in steps if s in LOADS]
        if any(load in COMPARED for load in loads):
            env.start_vestibule()
            env.start_nginx()
            env.start_haproxy()
        if "observe" in loads:
            env.start_observe_variants()
        if loads:
            log(f"targets: {env.targets}")
            results, args.discarded = run_loads(env, loads, args.seconds, args.repeats, args.quiet_wait, args.patience)
            for name in [*PROXIES, *LOADS["observe"].targets, "otlp-sink"]:
                procs.stop(name)
        if "scale" in steps:
            # Vestibule: (changes without load, under load); nginx: reloads (each phase) with one
            # upstream per Service, and with one shared upstream; see scale/generate.py.
            changes, reloads = ((5, 10), (1, 3)) if args.quick else ((20, 100), (2, 10))
            scale_result = scale.run(env, args.ingresses, changes, reloads, log)
    finally:
        procs.stop_all()
    if "criterion" in steps:
        log("cargo bench (criterion)")
        criterion_rows = run_criterion()
    text = write_report(args, results, scale_result, criterion_rows, started)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as file:
        file.write(text)
    print(text)


if __name__ == "__main__":
    main()
