#!/usr/bin/env python3
"""Generates the scale test's cluster: N Ingresses (3 paths each) and N Services (3 endpoints
each) as manifests for Vestibule, and the equivalent nginx configuration.

    generate.py OUT [--ingresses 10000] [--backend-ports 8001,8002,8003] [--listen-port 8080]

writes
    OUT/manifests/ingresses/app-I.yaml     one Ingress per file (host app-I.scale.example)
    OUT/manifests/services/team-K.yaml     Services and EndpointSlices, 100 Services per file
    OUT/nginx/servers/app-I.conf           one server block per Ingress
    OUT/nginx/upstreams.conf               one upstream per Service
    OUT/nginx-shared/...                    the same, every location sending to one shared
                                           upstream (see below)

Ingress I lives in namespace team-(I // 100) and sends /api and /web (Prefix) and /status
(Exact) to Service app-I. Every endpoint is on 127.0.0.1: a Service's three endpoints are the
backend's three ports, so each Service has three EndpointSlices of one endpoint each (a slice's
port applies to all of its endpoints). That is more objects than a cluster would have (one slice
of three addresses), so Vestibule's figures are, if anything, pessimistic.

nginx looks each proxy_pass target up in a list of all upstreams, so 10,000 upstream blocks make
loading the configuration quadratic. ingress-nginx avoids that with one Lua-balanced upstream;
plain nginx cannot pick endpoints per Service that way, so OUT/nginx-shared is nginx's best
case: the same servers and locations, all sending to one upstream of the three ports. Each
per-Service upstream keeps one idle connection (10,000 upstreams with more would exhaust
worker_connections under a load spread over all hosts).
"""

import argparse
import os

PER_FILE = 100
DOMAIN = "scale.example"


def host(i):
    return f"app-{i}.{DOMAIN}"


def namespace(i):
    return f"team-{i // PER_FILE}"


def ingress_yaml(i, api_path="/api"):
    """Ingress I; the scale test changes `api_path` to measure how fast a change is routed."""
    service = f"service: {{name: app-{i}, port: {{number: 80}}}}"
    return f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app-{i}
  namespace: {namespace(i)}
spec:
  ingressClassName: vestibule
  rules:
  - host: {host(i)}
    http:
      paths:
      - path: {api_path}
        pathType: Prefix
        backend:
          {service}
      - path: /web
        pathType: Prefix
        backend:
          {service}
      - path: /status
        pathType: Exact
        backend:
          {service}
"""


def service_yaml(i, ports):
    docs = [
        f"""apiVersion: v1
kind: Service
metadata: {{name: app-{i}, namespace: {namespace(i)}}}
spec:
  ports:
  - {{name: http, port: 80, targetPort: http}}
"""
    ]
    for n, port in enumerate(ports):
        docs.append(
            f"""apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app-{i}-{n}
  namespace: {namespace(i)}
  labels: {{kubernetes.io/service-name: app-{i}}}
addressType: IPv4
ports:
- {{name: http, port: {port}}}
endpoints:
- addresses: ["127.0.0.1"]
  conditions: {{ready: true}}
"""
        )
    return "---\n".join(docs)


def upstream_name(i, shared=False):
    return "shared" if shared else f"{namespace(i)}_app-{i}"


def nginx_server(i, listen_port, api_path="/api", shared=False):
    """The server block equivalent to Ingress I (nginx prefix locations stand in for Prefix)."""
    upstream = f"http://{upstream_name(i, shared)}"
    return f"""server {{
    listen 127.0.0.1:{listen_port};
    server_name {host(i)};
    location {api_path} {{ proxy_pass {upstream}; }}
    location /web {{ proxy_pass {upstream}; }}
    location = /status {{ proxy_pass {upstream}; }}
}}
"""


def nginx_upstream(name, ports, keepalive=1):
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in ports)
    return f"upstream {name} {{\n{servers}    keepalive {keepalive};\n}}\n"


def write_atomically(path, text):
    """Writes `text` to `path` through a hidden temporary file and a rename, so a watcher never
    reads half a file."""
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.tmp")
    with open(temporary, "w") as file:
        file.write(text)
    os.rename(temporary, path)


def generate(out, ingresses, backend_ports, listen_port):
    ingress_dir = os.path.join(out, "manifests", "ingresses")
    service_dir = os.path.join(out, "manifests", "services")
    server_dir = os.path.join(out, "nginx", "servers")
    shared_dir = os.path.join(out, "nginx-shared", "servers")
    for directory in (ingress_dir, service_dir, server_dir, shared_dir):
        os.makedirs(directory, exist_ok=True)
    for i in range(ingresses):
        with open(os.path.join(ingress_dir, f"app-{i}.yaml"), "w") as file:
            file.write(ingress_yaml(i))
        with open(os.path.join(server_dir, f"app-{i}.conf"), "w") as file:
            file.write(nginx_server(i, listen_port))
        with open(os.path.join(shared_dir, f"app-{i}.conf"), "w") as file:
            file.write(nginx_server(i, listen_port, shared=True))
    for first in range(0, ingresses, PER_FILE):
        last = min(first + PER_FILE, ingresses)
        with open(os.path.join(service_dir, f"{namespace(first)}.yaml"), "w") as file:
            file.write("---\n".join(service_yaml(i, backend_ports) for i in range(first, last)))
    with open(os.path.join(out, "nginx", "upstreams.conf"), "w") as file:
        file.write("".join(nginx_upstream(upstream_name(i), backend_ports) for i in range(ingresses)))
    with open(os.path.join(out, "nginx-shared", "upstreams.conf"), "w") as file:
        file.write(nginx_upstream("shared", backend_ports, keepalive=64))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--ingresses", type=int, default=10000)
    parser.add_argument("--backend-ports", default="8001,8002,8003")
    parser.add_argument("--listen-port", type=int, default=8080)
    args = parser.parse_args()
    ports = [int(port) for port in args.backend_ports.split(",")]
    generate(args.out, args.ingresses, ports, args.listen_port)


if __name__ == "__main__":
    main()
