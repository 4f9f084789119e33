#!/usr/bin/env python3
"""A stand-in OTLP/HTTP collector for the `observe` load: answers every POST with 200 `{}` and
discards the body, so that Vestibule's cost of exporting spans is measured, not a collector's.
Listens on 127.0.0.1 only. Usage: otlp_sink.py PORT"""

import http.server
import sys


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a collector would

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
