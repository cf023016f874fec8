"""Bearer tokens of the dataset API: one principal each, stored hashed, expiring, revocable.

The store is one JSON file (mode 600) in the Dagster instance home, replaced atomically on every
change (one writer at a time) and read on every request, so a token created or revoked by
``dataops tokens`` takes effect on a running server at once. Only SHA-256 hashes of tokens are
kept: the file alone grants nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

TOKEN_PREFIX = "dsh_"
STORE_FILE = "tokens.json"


@dataclass(frozen=True)
class TokenRecord:
    """What the store knows of one token: whose it is, until when, and whether it was revoked."""

    principal: str
    created: str
    expires: str | None
    revoked: bool = False

    def expiry(self) -> datetime | None:
        return datetime.fromisoformat(self.expires) if self.expires else None

    def valid_at(self, now: datetime) -> bool:
        expiry = self.expiry()
        return not self.revoked and (expiry is None or now < expiry)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The hashed tokens in ``folder``/tokens.json."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / STORE_FILE

    def _read(self) -> dict[str, TokenRecord]:
        if not self.path.exists():
            return {}
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return {digest: TokenRecord(**record) for digest, record in data.items()}

    def _write(self, records: dict[str, TokenRecord]) -> None:
        fd, temp = tempfile.mkstemp(prefix=f".{STORE_FILE}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({d: asdict(r) for d, r in records.items()}, out, indent=1)
            os.replace(temp, self.path)
        except BaseException:
            os.unlink(temp)
            raise

    @contextmanager
    def _changing(self) -> Iterator[dict[str, TokenRecord]]:
        """The records, written back on exit; one writer at a time (an exclusive file lock)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = self._read()
            yield records
            self._write(records)

    def create(self, principal: str, lifetime: timedelta | None) -> tuple[str, TokenRecord]:
        """A new token for ``principal``; only its hash is stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        record = TokenRecord(
            principal=principal,
            created=now.isoformat(),
            expires=(now + lifetime).isoformat() if lifetime is not None else None,
        )
        with self._changing() as records:
            records[token_hash(token)] = record
        return token, record

    def principal_for(self, token: str) -> str | None:
        """The principal of a valid token; None for an unknown, expired or revoked one."""
        record = self._read().get(token_hash(token))
        if record is None or not record.valid_at(datetime.now(UTC)):
            return None
        return record.principal

    def revoke(self, token: str | None = None, principal: str | None = None) -> int:
        """Revoke one token, or every token of ``principal``; how many were revoked."""
        revoked = 0
        with self._changing() as records:
            digests = (
                [token_hash(token)]
                if token is not None
                else [d for d, r in records.items() if r.principal == principal]
            )
            for digest in digests:
                record = records.get(digest)
                if record is not None and not record.revoked:
                    records[digest] = replace(record, revoked=True)
                    revoked += 1
        return revoked
