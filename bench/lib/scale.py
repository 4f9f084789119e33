"""The scale test: 10,000 Ingresses in file mode, against nginx holding the same configuration."""

import os
import random
import re
import statistics
import subprocess
import sys
import time

from procs import OtherCpu, descendants, free_ports, get, status_field, tree_pss_kib, tree_rss_kib, wait_for
from report import percentile
from setup import BENCH, render
from tools import BackgroundWrk

sys.path.insert(0, os.path.join(BENCH, "scale"))
import generate  # noqa: E402

SCRIPT = os.path.join(BENCH, "config", "scale.lua")
# Vestibule is started this many times; start to ready is the median.
READY_STARTS = 3


def poll_until(port, host, path, timeout=15.0):
    """Seconds until a new connection's GET answers 200 (None on timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if get(port, host, path, timeout=1.0) == 200:
            return time.monotonic() - started
        time.sleep(0.001)
    return None


def translation_times(log):
    """translation_us of every 'configuration applied' line, in order."""
    return [int(n) for n in re.findall(r"configuration applied.*?translation_us=(\d+)", log)]


class Changes:
    """Moves the /api path of distinct Ingresses (or nginx servers) to /vN/api, one at a time,
    and times how long until the new path answers 200 on a new connection. (/vN/api, not
    /api-vN: an nginx prefix location /api would match /api-vN already.)"""

    def __init__(self, seed):
        self.pool = random.Random(seed)
        self.serial = 0
        self.changed = set()

    def run(self, count, ingresses, apply, port, settle=0.05, timeout=15.0):
        """Makes `count` changes, each to an Ingress not changed before; `apply(i, path)` makes
        one. Returns the seconds to routed, one per change, and how many never were."""
        times, missed = [], 0
        fresh = [i for i in range(ingresses) if i not in self.changed]
        for i in self.pool.sample(fresh, count):
            self.changed.add(i)
            self.serial += 1
            path = f"/v{self.serial}/api"
            host = generate.host(i)
            if get(port, host, path) == 200:
                raise RuntimeError(f"{host}{path} answers before the change")
            started = time.monotonic()
            apply(i, path)
            waited = poll_until(port, host, path, timeout)
            if waited is None:
                missed += 1
            else:
                times.append(time.monotonic() - started)
            time.sleep(settle)
        return times, missed


def summary_ms(times):
    ms = sorted(t * 1000 for t in times)
    return {"n": len(ms), "p50": percentile(ms, 50), "p99": percentile(ms, 99), "max": ms[-1] if ms else None}


def run(env, ingresses, changes, nginx_reloads, log):
    """Runs the scale test; returns a dict of figures for report.scale_section. `changes` is
    (Vestibule's changes without load, under load); `nginx_reloads` is (reloads in each phase
    with one upstream per Service, with a shared one)."""
    out = os.path.join(env.dir, "scale")
    nginx_port = free_ports(1)[0]
    started = time.monotonic()
    generate.generate(out, ingresses, [env.backend_port, *env.backend_extra], nginx_port)
    log(f"scale: generated {ingresses} Ingresses in {time.monotonic() - started:.1f}s")
    result = {"ingresses": ingresses}
    result["vestibule"] = run_vestibule(env, out, ingresses, changes, log)
    per_service, shared = nginx_reloads
    result["nginx"] = run_nginx(env, out, ingresses, nginx_port, per_service, False, log)
    result["nginx-shared"] = run_nginx(env, out, ingresses, nginx_port, shared, True, log)
    return result


def start_to_ready(env, argv, admin):
    """Seconds from starting Vestibule to /readyz answering 200; stops it again."""
    started = time.monotonic()
    proc = env.procs.start("scale-vestibule-start", argv, cpus=env.proxy_cpus)
    wait_for(admin, "localhost", "/readyz", timeout=120, interval=0.002, proc=proc)
    ready = time.monotonic() - started
    env.procs.stop("scale-vestibule-start")
    return ready


def run_vestibule(env, out, ingresses, changes, log):
    idle_changes, loaded_changes = changes
    http, https, admin = free_ports(3)
    manifests = os.path.join(out, "manifests")
    argv = [
        env.vestibule, "--log-level", "info", "serve", "--manifests", manifests,
        "--http-addr", f"127.0.0.1:{http}", "--https-addr", f"127.0.0.1:{https}",
        "--admin-addr", f"127.0.0.1:{admin}", "--workers", str(env.workers),
        *env.vestibule_flags,
    ]
    figures = {}
    other = OtherCpu(env.procs).start()
    starts = [start_to_ready(env, argv, admin) for _ in range(READY_STARTS - 1)]
    started = time.monotonic()
    proc = env.procs.start("scale-vestibule", argv, cpus=env.proxy_cpus)
    wait_for(admin, "localhost", "/readyz", timeout=120, interval=0.002, proc=proc)
    starts.append(time.monotonic() - started)
    figures["ready_s"] = statistics.median(starts)
    figures["ready_each_s"] = starts
    wait_for(http, generate.host(ingresses - 1), "/web", timeout=30, proc=proc)
    figures["routed_s"] = time.monotonic() - started
    time.sleep(1)
    figures["rss_kib"] = status_field(proc.pid, "VmRSS")
    figures["hwm_kib"] = status_field(proc.pid, "VmHWM")
    # Memory freed during start-up goes back to the system once the allocator's purge delay has
    # passed and the threads that did the work have exited (see the README): read it again then.
    time.sleep(4)
    figures["rss_settled_kib"] = status_field(proc.pid, "VmRSS")
    initial = translation_times(env.procs.log("scale-vestibule"))
    figures["translation_first_us"] = initial[0] if initial else None
    each = ", ".join(f"{ready:.3f}" for ready in starts)
    log(f"scale: Vestibule ready in {figures['ready_s']:.3f}s (median of {each}), RSS {figures['rss_kib']} KiB")

    ingress_dir = os.path.join(manifests, "ingresses")

    def apply(i, path):
        generate.write_atomically(os.path.join(ingress_dir, f"app-{i}.yaml"), generate.ingress_yaml(i, path))

    plan = Changes(seed=1)
    times, missed = plan.run(idle_changes, ingresses, apply, http)
    figures["idle"] = {**summary_ms(times), "missed": missed}
    log(f"scale: Vestibule, {idle_changes} changes without load: {figures['idle']}")

    figures["loaded"] = changes_under_load(
        env, http, ingresses, lambda: plan.run(loaded_changes, ingresses, apply, http), "scale-vestibule")
    log(f"scale: Vestibule, {loaded_changes} changes under load: {figures['loaded']}")
    later = translation_times(env.procs.log("scale-vestibule"))[len(initial):]
    # summary_ms takes seconds: translation times given in µs come out in ms.
    figures["translation_change_ms"] = summary_ms([us / 1e6 for us in later]) if later else None
    figures["rss_after_kib"] = status_field(proc.pid, "VmRSS")
    figures["hwm_after_kib"] = status_field(proc.pid, "VmHWM")
    figures["other_pct"] = other.stop()
    env.procs.stop("scale-vestibule")
    return figures


def changes_under_load(env, port, ingresses, make_changes, name):
    """Makes the changes while wrk (64 connections, stable paths of all hosts) runs; counts what
    failed. wrk's report goes to DIR/wrk-NAME.log."""
    os.environ["SCALE_HOSTS"] = str(ingresses)
    wrk = BackgroundWrk(f"http://127.0.0.1:{port}/", 64, script=SCRIPT, cpus=env.client_cpus)
    time.sleep(1)
    times, missed = make_changes()
    report = wrk.stop()
    with open(os.path.join(env.dir, f"wrk-{name}.log"), "w") as file:
        file.write(report["text"])
    return {
        **summary_ms(times),
        "missed": missed,
        "requests": report["requests"],
        "failed": report["errors"],
        "rps": report["rps"],
    }


def run_nginx(env, out, ingresses, port, reloads, shared, log):
    name = "nginx-shared" if shared else "nginx"
    conf_dir = os.path.join(out, name)
    os.makedirs(os.path.join(conf_dir, "tmp"), exist_ok=True)
    conf = render("scale-nginx.conf", os.path.join(conf_dir, "nginx.conf"), dir=conf_dir,
                  workers=env.workers, port=port)
    nginx = ["nginx", "-p", conf_dir, "-e", "stderr", "-c", conf]
    figures = {"reloads": reloads}
    other = OtherCpu(env.procs).start()
    started = time.monotonic()
    proc = env.procs.start(f"scale-{name}", nginx, cpus=env.proxy_cpus)
    wait_for(port, generate.host(ingresses - 1), "/web", timeout=300, interval=0.002, proc=proc)
    figures["routed_s"] = time.monotonic() - started
    time.sleep(1)
    figures["rss_kib"] = tree_rss_kib(proc.pid)
    figures["pss_kib"] = tree_pss_kib(proc.pid)
    log(f"scale: {name} answering in {figures['routed_s']:.3f}s, RSS {figures['rss_kib']} KiB")

    server_dir = os.path.join(conf_dir, "servers")

    def apply(i, path):
        text = generate.nginx_server(i, port, path, shared=shared)
        generate.write_atomically(os.path.join(server_dir, f"app-{i}.conf"), text)
        subprocess.run(nginx + ["-s", "reload"], check=True, capture_output=True)

    plan = Changes(seed=2)
    changes = lambda: plan.run(reloads, ingresses, apply, port, settle=0.5, timeout=120)  # noqa: E731
    times, missed = changes()
    figures["idle"] = {**summary_ms(times), "missed": missed}
    log(f"scale: {name}, {reloads} reloads without load: {figures['idle']}")
    figures["loaded"] = changes_under_load(env, port, ingresses, changes, f"scale-{name}")
    log(f"scale: {name}, {reloads} reloads under load: {figures['loaded']}")
    # Old workers finish their connections and exit; measure once only the new ones remain.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(descendants(proc.pid)) > env.workers:
        time.sleep(0.2)
    figures["rss_after_kib"] = tree_rss_kib(proc.pid)
    figures["pss_after_kib"] = tree_pss_kib(proc.pid)
    figures["other_pct"] = other.stop()
    env.procs.stop(f"scale-{name}")
    return figures
