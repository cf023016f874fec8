"""The one retry and timeout policy of every cloud storage adapter, in each SDK's own terms.

Transient faults (throttling, 5xx, dropped connections) are retried with exponential backoff;
permanent ones (403, 404, bad credentials) are not, and surface as ``StorageError``. Change the
numbers here and every backend follows. Boto3 and Azure count attempts; Google's retry counts
time, so it gets the time the same attempts would take at most. The load-time check gets fewer
attempts, so a wrong endpoint fails in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from azure.storage.blob import ExponentialRetry
from botocore.config import Config
from google.api_core.retry import Retry
from google.cloud.storage.retry import DEFAULT_RETRY


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a storage call is repeated before it fails for good."""

    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 20.0
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    check_attempts: int = 2

    def time_budget(self) -> float:
        """Upper bound of the time ``attempts`` tries take: backoff plus one read timeout."""
        delays = (min(self.initial_delay * 2**n, self.max_delay) for n in range(self.attempts - 1))
        return sum(delays) + self.read_timeout

    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


POLICY = RetryPolicy()


def botocore_config(
    policy: RetryPolicy = POLICY, for_check: bool = False, **options: object
) -> Config:
    """Botocore's standard retry mode (throttling, 5xx, connection errors) with our attempts."""
    return Config(
        retries={
            "mode": "standard",
            "max_attempts": policy.check_attempts if for_check else policy.attempts,
        },
        connect_timeout=policy.connect_timeout,
        read_timeout=policy.read_timeout,
        **options,
    )


def azure_options(policy: RetryPolicy = POLICY, for_check: bool = False) -> dict[str, object]:
    """Keyword arguments for an azure-storage-blob client: retry policy and network timeouts."""
    attempts = policy.check_attempts if for_check else policy.attempts
    return {
        "retry_policy": ExponentialRetry(
            initial_backoff=policy.initial_delay,
            increment_base=2,
            retry_total=attempts - 1,
            random_jitter_range=policy.initial_delay,
        ),
        "connection_timeout": policy.connect_timeout,
        "read_timeout": policy.read_timeout,
    }


def google_retry(policy: RetryPolicy = POLICY, for_check: bool = False) -> Retry:
    """google-cloud-storage's own retryable-error predicate with our backoff and time budget."""
    budget = policy.initial_delay * 2**policy.check_attempts if for_check else policy.time_budget()
    return DEFAULT_RETRY.with_delay(
        initial=policy.initial_delay, maximum=policy.max_delay, multiplier=2.0
    ).with_timeout(budget)
