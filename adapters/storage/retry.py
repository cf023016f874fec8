"""The one retry and timeout policy of every cloud storage adapter.

Transient faults (throttling, 5xx, dropped connections) are retried with exponential backoff;
permanent ones (403, 404, bad credentials) are not, and surface as ``StorageError``. The policy is
a field of each object store (``ObjectStore.retry``, these numbers by default): each adapter
translates it into its own SDK's terms. Boto3 and Azure count attempts; Google's retry counts
time, so it gets the time the same attempts would take at most. The load-time check is one small
request: it gets fewer attempts and a read timeout as short as the connect timeout, so a wrong
endpoint fails in seconds. SDK-free, so importing it imports no cloud library.
"""

from __future__ import annotations

import dagster as dg


class RetryPolicy(dg.Config):
    """How often and how patiently a storage call is repeated before it fails for good."""

    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 20.0
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    check_attempts: int = 2

    def for_check(self) -> RetryPolicy:
        """The policy of the load-time check: ``check_attempts`` tries, each answering quickly."""
        return self.model_copy(
            update={"attempts": self.check_attempts, "read_timeout": self.connect_timeout}
        )

    def time_budget(self) -> float:
        """Upper bound of the time ``attempts`` tries take: backoff plus one read timeout."""
        delays = (min(self.initial_delay * 2**n, self.max_delay) for n in range(self.attempts - 1))
        return sum(delays) + self.read_timeout

    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)
