"""A real HTTP server standing in for a Marquez-compatible catalog (``POST /api/v1/lineage``).

Used by the lineage outage test and ``bench/lineage_bench.py``. It checks the bearer API key,
records each event with the phase it arrived in, and can be stopped, restarted, or made to answer
503 as a catalog under maintenance does.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "test-lineage-key-7f3a"


class Catalog:
    """Records each event POSTed to ``/api/v1/lineage``; can be stopped, restarted or failing."""

    def __init__(self, port: int) -> None:
        self.port, self.received, self.refused = port, [], 0
        self.failing, self.phase = False, "up"
        self._server: ThreadingHTTPServer | None = None

    def start(self, phase: str, failing: bool = False) -> None:
        catalog = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                authorized = self.headers.get("Authorization") == f"Bearer {API_KEY}"
                if self.path != "/api/v1/lineage" or not authorized:
                    self.send_response(404 if authorized else 401)
                elif catalog.failing:
                    catalog.refused += 1
                    self.send_response(503)
                else:
                    catalog.received.append((catalog.phase, json.loads(body)))
                    self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.phase, self.failing = phase, failing
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
