"""Starting, pinning, probing and stopping the processes of a benchmark run.

Every process started here is recorded and stopped by `Procs.stop_all`, which bench.py calls on
exit (normal or not). Only 127.0.0.1 is ever used.
"""

import http.client
import os
import resource
import signal
import socket
import subprocess
import time


def free_ports(count):
    """`count` distinct TCP ports free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def pinned(argv, cpus):
    """`argv` run under `taskset -c cpus`, or unchanged when `cpus` is None."""
    return argv if cpus is None else ["taskset", "-c", cpus, *argv]


class Procs:
    """The long-running processes of a run, stopped together at the end."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.running = {}

    def start(self, name, argv, cpus=None, env=None, stdout=None):
        """Starts `argv` in its own process group; its output goes to LOGDIR/NAME.log (its
        stdout to `stdout` instead, when given, such as subprocess.DEVNULL)."""
        log = open(os.path.join(self.logdir, f"{name}.log"), "wb")
        proc = subprocess.Popen(
            pinned(argv, cpus),
            stdout=log if stdout is None else stdout,
            stderr=subprocess.STDOUT if stdout is None else log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        log.close()
        self.running[name] = proc
        # run.sh kills these process groups should this script die without cleaning up.
        with open(os.path.join(self.logdir, "pids"), "a") as pids:
            pids.write(f"{proc.pid}\n")
        return proc

    def stop(self, name, timeout=10):
        """Stops one process group: SIGTERM, then SIGKILL if it does not go in time."""
        proc = self.running.pop(name, None)
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def stop_all(self):
        for name in list(self.running):
            self.stop(name)

    def log(self, name):
        with open(os.path.join(self.logdir, f"{name}.log"), errors="replace") as file:
            return file.read()


def get(port, host, path="/", timeout=2.0):
    """One HTTP/1.1 GET to 127.0.0.1:port; the status, or None when nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        conn.close()


def wait_for(port, host, path="/", status=200, timeout=30.0, interval=0.002, proc=None):
    """Polls until GET answers `status`; returns the seconds waited. Raises on timeout or if
    `proc` exits first."""
    started = time.monotonic()
    while True:
        if get(port, host, path) == status:
            return time.monotonic() - started
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args} exited with {proc.returncode}")
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"127.0.0.1:{port} {host}{path} did not answer {status} in {timeout}s")
        time.sleep(interval)


class Poller:
    """Polls one URL over a kept-alive connection, reconnecting when needed: cheap enough to
    poll every millisecond while measuring how fast a change is routed."""

    def __init__(self, port, host):
        self.port, self.host = port, host
        self.conn = None

    def status(self, path):
        for _ in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                self.conn.request("GET", path, headers={"Host": self.host})
                response = self.conn.getresponse()
                response.read()
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                return response.status
            except (OSError, http.client.HTTPException):
                self.close()
        return None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def until_status(poller, path, status=200, timeout=10.0, interval=0.001):
    """Seconds until `poller` sees `status` at `path` (None on timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if poller.status(path) == status:
            return time.monotonic() - started
        time.sleep(interval)
    return None


def status_field(pid, field):
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM) in KiB, or None if absent."""
    try:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def descendants(pid):
    """The PIDs of every live process below `pid` (e.g. nginx's workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_rss_kib(pid):
    """VmRSS of `pid` and all its descendants, summed, in KiB."""
    return sum(status_field(p, "VmRSS") or 0 for p in [pid, *descendants(pid)])


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User plus system CPU time of `pid` (all its threads) and its descendants, including
    children that exited and were waited for (nginx's old workers after a reload), in seconds."""
    total = 0
    for p in [pid, *descendants(pid)]:
        try:
            with open(f"/proc/{p}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(n) for n in fields[11:15])  # utime, stime, cutime, cstime
    return total / _TICK


def own_cpu_seconds():
    """CPU time of this script and of the children it waited for (wrk, h2load, nginx -s)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class OtherCpu:
    """Measures the CPU that processes outside the benchmark use between start() and stop():
    the machine's busy time minus that of `procs` and of this script and its children, as a
    percentage of one core."""

    def __init__(self, procs):
        self.procs = procs

    def _ours(self):
        return sum(cpu_seconds(proc.pid) for proc in self.procs.running.values()) + own_cpu_seconds()

    def start(self):
        self.busy, self.ours, self.started = machine_busy_seconds(), self._ours(), time.monotonic()
        return self

    def stop(self):
        busy, ours = machine_busy_seconds() - self.busy, self._ours() - self.ours
        return max(0.0, busy - ours) / (time.monotonic() - self.started) * 100


def machine_busy_seconds():
    """CPU time the whole machine spent not idle (including steal), in seconds, summed over
    CPUs."""
    with open("/proc/stat") as file:
        fields = [int(n) for n in file.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TICK


def wait_until_quiet(limit, threshold=0.10, window=0.5):
    """Waits (at most `limit` seconds) until the machine's CPU use over `window` is below
    `threshold` of one core: other people's builds and tests on a shared machine disturb the
    figures. Returns the seconds waited."""
    started = time.monotonic()
    while True:
        before = machine_busy_seconds()
        time.sleep(window)
        if (machine_busy_seconds() - before) / window < threshold:
            return time.monotonic() - started
        if time.monotonic() - started >= limit:
            return time.monotonic() - started


def tree_pss_kib(pid):
    """Proportional set size of `pid` and its descendants, summed, in KiB: unlike summed RSS,
    pages shared between nginx's master and workers are counted once."""
    total = 0
    for p in [pid, *descendants(pid)]:
        try:
            with open(f"/proc/{p}/smaps_rollup") as file:
                for line in file:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total
