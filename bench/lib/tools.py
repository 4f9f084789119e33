"""Running wrk and h2load and reading their reports."""

import re
import signal
import subprocess

from procs import pinned

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_UNITS_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def _duration_ms(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def _bytes(text):
    number, unit = re.fullmatch(r"([\d.]+)(B|KB|MB|GB)", text).groups()
    return float(number) * _UNITS_BYTES[unit]


def wrk_command(url, connections, duration, host=None, script=None, threads=1):
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    argv += ["--timeout", "5s"]
    if host:
        argv += ["-H", f"Host: {host}"]
    if script:
        argv += ["-s", script]
    return argv + [url]


def parse_wrk(text):
    """wrk's report as numbers: rps, mb_s (MiB/s), p50_ms, p99_ms, requests, errors (socket
    errors plus non-2xx/3xx answers)."""
    result = {"text": text}
    match = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    result["rps"] = float(match.group(1))
    match = re.search(r"Transfer/sec:\s+(\S+)", text)
    result["mb_s"] = _bytes(match.group(1)) / 1024**2 if match else None
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        result[f"p{pct}_ms"] = _duration_ms(match.group(1)) if match else None
    match = re.search(r"(\d+) requests in", text)
    result["requests"] = int(match.group(1)) if match else 0
    errors = 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if match:
        errors += sum(int(n) for n in match.groups())
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if match:
        errors += int(match.group(1))
    result["errors"] = errors
    return result


def wrk(url, connections, duration, host=None, script=None, cpus=None):
    """Runs wrk for `duration` seconds and returns `parse_wrk` of its report."""
    argv = pinned(wrk_command(url, connections, duration, host, script), cpus)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


class BackgroundWrk:
    """wrk running until stopped (SIGINT makes it print its report)."""

    def __init__(self, url, connections, host=None, script=None, cpus=None):
        argv = pinned(wrk_command(url, connections, 3600, host, script), cpus)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return parse_wrk(out)


def h2load(url, clients, streams, duration, host=None, h1=False, connect_to=None, cpus=None, warmup=1):
    """Runs h2load for `duration` seconds (after `warmup`) and returns rps, mb_s, mean_ms,
    requests and errors (h2load's "failed": errors, timeouts and non-2xx/3xx answers)."""
    argv = ["h2load", "-t1", f"-c{clients}", f"-m{streams}", f"-D{duration}", f"--warm-up-time={warmup}"]
    if h1:
        argv.append("--h1")
    if host:
        argv += ["-H", f":authority: {host}"]
    if connect_to:
        argv.append(f"--connect-to={connect_to}")
    argv = pinned(argv + [url], cpus)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + warmup + 60)
    text = done.stdout + done.stderr
    match = re.search(r"finished in [\d.]+s, ([\d.]+) req/s, ([\d.]+)(B|KB|MB|GB)/s", text)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{text}")
    result = {"text": text, "rps": float(match.group(1))}
    result["mb_s"] = float(match.group(2)) * _UNITS_BYTES[match.group(3)] / 1024**2
    counts = re.search(
        r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout",
        text,
    )
    # "failed" counts non-2xx/3xx answers too; "errored" and "timeout" are subsets of it.
    _, done_n, _, failed, _, _ = (int(n) for n in counts.groups())
    result["requests"] = done_n
    result["errors"] = failed
    match = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", text)
    result["mean_ms"] = _duration_ms(match.group(3)) if match else None
    return result
