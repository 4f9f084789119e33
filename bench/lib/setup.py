"""The environment of a run: certificate, files, configurations, backend and the three proxies."""

import os
import re
import subprocess
import sys

from procs import free_ports, wait_for

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(BENCH, "config")

#: The host every plain-HTTP and h2c load sends (no TLS in Vestibule's Ingress).
PLAIN_HOST = "bench.example"
#: The TLS host (in Vestibule a spec.tls host with its certificate in a Secret).
TLS_HOST = "secure.example"

#: Vestibule with its observability features turned on one at a time, for the `observe` load:
#: (target, what is on, flags). {otlp} is the stand-in collector's URL.
OBSERVE_VARIANTS = [
    ("v-bare", "metrics off, access log off", ["--metrics=false", "--access-log", "off"]),
    ("v-metrics", "metrics, access log off (as in the other loads)", ["--access-log", "off"]),
    ("v-log", "metrics, JSON access log (the defaults)", ["--access-log", "json"]),
    ("v-otlp", "metrics, JSON access log, OTLP span export", ["--access-log", "json", "--otlp-endpoint", "{otlp}"]),
]


def render(template, dest, **fields):
    """Copies config/TEMPLATE to DEST with each {{field}} replaced."""
    with open(os.path.join(CONFIG, template)) as file:
        text = file.read()
    for key, value in fields.items():
        text = text.replace("{{" + key + "}}", str(value))
    left = re.findall(r"\{\{\w+\}\}", text)
    if left:
        raise RuntimeError(f"{template}: fields not filled in: {left}")
    with open(dest, "w") as file:
        file.write(text)
    return dest


def make_certificate(dir):
    """A P-256 self-signed certificate for both bench hosts: tls.crt, tls.key and tls.pem."""
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", f"/CN={TLS_HOST}",
            "-addext", f"subjectAltName=DNS:{TLS_HOST},DNS:{PLAIN_HOST}",
            "-keyout", os.path.join(dir, "tls.key"), "-out", os.path.join(dir, "tls.crt"),
        ],
        check=True,
        capture_output=True,
    )
    with open(os.path.join(dir, "tls.pem"), "w") as pem:
        for name in ("tls.crt", "tls.key"):
            with open(os.path.join(dir, name)) as part:
                pem.write(part.read())


def make_files(dir):
    """The backend's static bodies: /16k and /1m."""
    www = os.path.join(dir, "www")
    os.makedirs(www, exist_ok=True)
    for name, size in (("16k", 16 * 1024), ("1m", 1024 * 1024)):
        with open(os.path.join(www, name), "wb") as file:
            file.write(os.urandom(size))
        os.chmod(os.path.join(www, name), 0o644)
    # nginx workers run as nobody when started by root.
    os.chmod(dir, 0o755)
    os.chmod(www, 0o755)


def vestibule_flags(vestibule):
    """Flags that put Vestibule on the same footing as nginx and HAProxy, which run without an
    access log: `--access-log off` where this build has an access log."""
    done = subprocess.run([vestibule, "serve", "--help"], capture_output=True, text=True, check=True)
    return ["--access-log", "off"] if "--access-log" in done.stdout else []


def indent(path, spaces):
    with open(path) as file:
        return "\n".join(" " * spaces + line for line in file.read().splitlines())


class Setup:
    """Ports and processes of the load tests. `targets` maps each target name to its ports:
    http (HTTP/1.1), h2c (HTTP/2 prior knowledge) and https (TLS, ALPN h2 and http/1.1)."""

    def __init__(self, dir, procs, vestibule, workers, proxy_cpus, client_cpus):
        self.dir, self.procs, self.vestibule = dir, procs, vestibule
        self.workers, self.proxy_cpus, self.client_cpus = workers, proxy_cpus, client_cpus
        self.targets = {}
        make_certificate(dir)
        make_files(dir)
        (self.backend_port, *self.backend_extra, self.backend_h2c) = free_ports(4)
        self.vestibule_flags = vestibule_flags(vestibule)

    def start_backend(self):
        port2, port3 = self.backend_extra
        conf = render("backend-nginx.conf", os.path.join(self.dir, "backend-nginx.conf"),
                      dir=self.dir, port=self.backend_port, port2=port2, port3=port3,
                      h2c=self.backend_h2c)
        os.makedirs(os.path.join(self.dir, "backend-tmp"), exist_ok=True)
        proc = self.procs.start("backend", ["nginx", "-p", self.dir, "-e", "stderr", "-c", conf],
                                cpus=self.client_cpus)
        wait_for(self.backend_port, PLAIN_HOST, proc=proc)
        self.backend_pid = proc.pid
        self.targets["direct"] = {"http": self.backend_port, "h2c": self.backend_h2c, "pid": None}

    def start_vestibule(self):
        self.targets["vestibule"] = self._vestibule("vestibule", self.vestibule_flags)

    def start_observe_variants(self):
        """The `observe` load's targets: a stand-in OTLP collector and one Vestibule per entry of
        OBSERVE_VARIANTS. Their stdout (the access log) goes to /dev/null, so the figures are
        the proxy's cost of writing it, not the disk's."""
        (sink,) = free_ports(1)
        self.procs.start("otlp-sink", [sys.executable, os.path.join(BENCH, "tools", "otlp_sink.py"), str(sink)],
                         cpus=self.client_cpus)
        for name, _, flags in OBSERVE_VARIANTS:
            flags = [flag.replace("{otlp}", f"http://127.0.0.1:{sink}") for flag in flags]
            self.targets[name] = self._vestibule(name, flags, stdout=subprocess.DEVNULL)

    def _vestibule(self, name, flags, stdout=None):
        http, https, admin = free_ports(3)
        manifests = os.path.join(self.dir, "manifests")
        os.makedirs(manifests, exist_ok=True)
        render("vestibule.yaml", os.path.join(manifests, "bench.yaml"), backend=self.backend_port,
               crt=indent(os.path.join(self.dir, "tls.crt"), 4),
               key=indent(os.path.join(self.dir, "tls.key"), 4))
        argv = [
            self.vestibule, "--log-level", "warn", "serve", "--manifests", manifests,
            "--http-addr", f"127.0.0.1:{http}", "--https-addr", f"127.0.0.1:{https}",
            "--admin-addr", f"127.0.0.1:{admin}", "--workers", str(self.workers),
            *flags,
        ]
        proc = self.procs.start(name, argv, cpus=self.proxy_cpus, stdout=stdout)
        wait_for(admin, "localhost", "/readyz", proc=proc)
        wait_for(http, PLAIN_HOST, proc=proc)
        return {"http": http, "h2c": http, "https": https, "pid": proc.pid}

    def start_nginx(self):
        http, h2c, https = free_ports(3)
        os.makedirs(os.path.join(self.dir, "nginx-tmp"), exist_ok=True)
        conf = render("nginx.conf", os.path.join(self.dir, "nginx.conf"), dir=self.dir,
                      workers=self.workers, backend=self.backend_port, http=http, h2c=h2c, https=https)
        proc = self.procs.start("nginx", ["nginx", "-p", self.dir, "-e", "stderr", "-c", conf],
                                cpus=self.proxy_cpus)
        wait_for(http, PLAIN_HOST, proc=proc)
        self.targets["nginx"] = {"http": http, "h2c": h2c, "https": https, "pid": proc.pid}

    def start_haproxy(self):
        http, h2c, https = free_ports(3)
        conf = render("haproxy.cfg", os.path.join(self.dir, "haproxy.cfg"), dir=self.dir,
                      workers=self.workers, backend=self.backend_port, http=http, h2c=h2c, https=https)
        proc = self.procs.start("haproxy", ["haproxy", "-db", "-f", conf], cpus=self.proxy_cpus)
        wait_for(http, PLAIN_HOST, proc=proc)
        self.targets["haproxy"] = {"http": http, "h2c": h2c, "https": https, "pid": proc.pid}
