"""A TCP forwarder in front of a real local server that can die the way the server would.

Killing moto or fake-gcs-server for real would also lose their in-memory data, which a real
store keeps across a crash; so the server keeps running and this forwarder dies in its place. To
the client a kill looks like a crashed server: open connections are closed mid-request or
mid-response, and new connections are refused until ``revive`` listens again on the same port.
``kill_after`` arms a kill for the moment a number of bytes has crossed in one direction
(``up``: client to server, the body of a write; ``down``: server to client, a read), so the cut
falls inside the transfer, not between requests.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit


class KillableProxy:
    """Forwards 127.0.0.1:<port> to ``upstream`` byte for byte until killed."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._budget: dict[str, int | None] = {"up": None, "down": None}
        self.dead = False
        self.kills = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._serve(self._listener)

    def kill_after(self, up: int | None = None, down: int | None = None) -> None:
        """Die once ``up`` more bytes went to the server, or ``down`` more came back."""
        with self._lock:
            self._budget = {"up": up, "down": down}

    def kill(self) -> None:
        with self._lock:
            self._kill()

    def revive(self) -> None:
        """Listen again on the same port, as a restarted server would."""
        with self._lock:
            self.dead = False
            self._budget = {"up": None, "down": None}
            self._listener = socket.create_server(("127.0.0.1", self.port))
            self._serve(self._listener)

    def close(self) -> None:
        self.kill()

    def _kill(self) -> None:
        if self.dead:
            return
        self.dead = True
        self.kills += 1
        for sock in [self._listener, *self._sockets]:
            _close(sock)
        self._sockets.clear()

    def _serve(self, listener: socket.socket) -> None:
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._upstream)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self.dead:
                    _close(client)
                    _close(server)
                    return
                self._sockets |= {client, server}
            for source, sink, direction in ((client, server, "up"), (server, client, "down")):
                threading.Thread(
                    target=self._pump, args=(source, sink, direction), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        try:
            while data := source.recv(64 * 1024):
                if not self._spend(direction, len(data)):
                    return
                sink.sendall(data)
        except OSError:
            return
        finally:
            with self._lock:
                for sock in (source, sink):
                    self._sockets.discard(sock)
                    _close(sock)

    def _spend(self, direction: str, size: int) -> bool:
        """Count bytes against an armed kill; False (and dead) once the budget is exceeded."""
        with self._lock:
            budget = self._budget[direction]
            if budget is not None:
                self._budget[direction] = budget - size
                if budget - size < 0:
                    self._kill()
            return not self.dead


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
