"""The durable local outbox: lineage events are stored before any delivery is tried.

A SQLite database under the instance home (``<home>/lineage/outbox.sqlite3``) holds every event,
in the order it was added, keyed by (``runId``, ``eventType``, ``eventTime``), so adding an event
that is already there is a no-op. ``deliver`` sends unsent events oldest first and stops at the
first failure, leaving it and everything after it for the next call: events arrive in order per
run, at least once (an event whose send succeeded but whose mark was lost is sent again). One
process delivers at a time (an exclusive lock file); another finds the lock taken and leaves the
work to it. Sent events are kept for ``KEEP_SENT_DAYS`` so rebuilding a run does not send it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUTBOX_FILE = "outbox.sqlite3"
KEEP_SENT_DAYS = 30
BUSY_TIMEOUT_SECONDS = 30.0
BATCH = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    event_key TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS unsent ON events (sent_at, seq);
"""


def event_key(event: Mapping[str, Any]) -> str:
    """What a receiver deduplicates on: (runId, eventType, eventTime)."""
    return "|".join((event["run"]["runId"], event.get("eventType", ""), event["eventTime"]))


@dataclass(frozen=True)
class Delivery:
    """What one ``deliver`` call did."""

    sent: int
    pending: int
    error: str | None = None


class Outbox:
    """Events waiting for (or already past) delivery, durable across crashes and restarts."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / OUTBOX_FILE
        self._lock_path = directory / f"{OUTBOX_FILE}.lock"
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    def add(self, run_id: str, events: Iterable[Mapping[str, Any]], resend: bool = False) -> int:
        """Store a run's events in order; returns how many were new (or, with resend, re-queued).

        ``resend`` queues events already sent again, at the end, for a backfill.
        """
        rows = [(run_id, event_key(e), json.dumps(e, sort_keys=True)) for e in events]
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            before = db.total_changes
            if resend:
                db.executemany(
                    "DELETE FROM events WHERE event_key = ? AND sent_at IS NOT NULL",
                    [(key,) for _, key, _ in rows],
                )
            deleted = db.total_changes - before
            db.executemany(
                "INSERT OR IGNORE INTO events (run_id, event_key, body) VALUES (?, ?, ?)", rows
            )
            added = db.total_changes - before - deleted
            db.execute(
                "DELETE FROM events WHERE sent_at < ?", (time.time() - KEEP_SENT_DAYS * 86_400,)
            )
            db.execute("COMMIT")
            return added

    def pending(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM events WHERE sent_at IS NULL").fetchone()[0]

    def deliver(self, send: Callable[[dict[str, Any]], None]) -> Delivery:
        """Send unsent events in order until none is left or one fails; never raises for a send."""
        with open(self._lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return Delivery(sent=0, pending=self.pending(), error="another process delivers")
            try:
                return self._deliver_locked(send)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _deliver_locked(self, send: Callable[[dict[str, Any]], None]) -> Delivery:
        """Marks are committed once per batch: a crash in between only means sending again."""
        sent = 0
        with self._connect() as db:
            while True:
                rows = db.execute(
                    "SELECT seq, body FROM events WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
                    (BATCH,),
                ).fetchall()
                if not rows:
                    break
                db.execute("BEGIN")
                try:
                    for seq, body in rows:
                        send(json.loads(body))
                        db.execute(
                            "UPDATE events SET sent_at = ? WHERE seq = ?", (time.time(), seq)
                        )
                        sent += 1
                except Exception as exc:  # any transport failure: keep the event for later
                    db.execute("COMMIT")
                    pending = db.execute(
                        "SELECT COUNT(*) FROM events WHERE sent_at IS NULL"
                    ).fetchone()[0]
                    return Delivery(sent, pending, f"{type(exc).__name__}: {exc}")
                db.execute("COMMIT")
        return Delivery(sent, 0)
