"""Stand-ins for Grafana and the API on the target's loopback, for the edge tests only.

Each port answers every request with what it received (port, path, the headers nginx forwarded, the size
of a POST's body), so a test can tell which upstream nginx chose and what it passed on. GET /api/hold
waits until the release file exists: a request that stays in flight for as long as a test needs. A POST
to /api/ds/query takes as long as a panel's query might, so that a team's refreshes overlap in flight.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RELEASE = Path("/run/edge-test-release")
HOLD_LIMIT_S = 60
QUERY_TIME_S = 0.2


class Server(ThreadingHTTPServer):
    # A team's refresh opens hundreds of upstream connections at once: the default backlog (5) would
    # drop them.
    request_queue_size = 1024
    daemon_threads = True


class Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        received = len(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if self.path.startswith("/api/ds/query"):
            time.sleep(QUERY_TIME_S)
        self._answer({"body_bytes": received})

    def do_GET(self) -> None:
        if self.path.endswith("/hold"):
            deadline = time.monotonic() + HOLD_LIMIT_S
            while not RELEASE.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        self._answer({})

    def _answer(self, extra: dict) -> None:
        body = json.dumps(
            {"port": self.server.server_address[1], "path": self.path, "headers": dict(self.headers), **extra}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        # nginx must drop this one and send its own.
        self.send_header("X-Frame-Options", "SAMEORIGIN")
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    servers = [Server(("127.0.0.1", int(port)), Echo) for port in sys.argv[1:]]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
