"""The worker's HTTP endpoints: ``/metrics`` (Prometheus), ``/healthz`` (alive) and ``/readyz``
(ready for traffic), on one port.

* ``/healthz`` is 200 while the event loop keeps ticking (:meth:`Health.tick`, called by a timer);
  a loop blocked longer than ``stall_after_s`` answers 503 so an orchestrator restarts the worker.
* ``/readyz`` is 200 once the worker has joined its consumer group with partitions assigned and is
  not rebalancing (:meth:`Health.set_ready`), else 503 with the reason.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class Health:
    """Liveness and readiness, set from the worker, read by the HTTP handler (thread-safe enough:
    plain attribute writes of immutable values)."""

    def __init__(self, *, stall_after_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after_s = stall_after_s
        self.clock = clock
        self.last_tick = clock()
        self.ready = False
        self.reason = "starting"

    def tick(self) -> None:
        self.last_tick = self.clock()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        self.ready, self.reason = ready, reason or ("ready" if ready else "not ready")

    def alive(self) -> tuple[bool, str]:
        idle = self.clock() - self.last_tick
        if idle > self.stall_after_s:
            return False, f"event loop has not ticked for {idle:.0f} s"
        return True, "alive"


def serve(registry: CollectorRegistry, health: Health, port: int, addr: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Start the endpoints in a daemon thread; ``server.server_address[1]`` is the bound port."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                return
            if path in ("/healthz", "/readyz"):
                ok, reason = health.alive() if path == "/healthz" else (health.ready, health.reason)
                body = json.dumps({"status": "ok" if ok else "unavailable", "reason": reason}).encode()
                self._send(200 if ok else 503, body, "application/json")
                return
            self._send(404, b'{"endpoints": ["/metrics", "/healthz", "/readyz"]}', "application/json")

        def log_message(self, *args: object) -> None:  # scrapes every 15 s would flood the log
            pass

    server = ThreadingHTTPServer((addr, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="crosswire-http", daemon=True).start()
    return server
