"""The ``lineage`` settings section: where OpenLineage events go, validated when a location loads.

``transport`` is ``file`` (default: JSON lines in ``<instance home>/lineage/events.jsonl``, or
``path``), ``http`` (``url``, ``endpoint`` default ``/api/v1/lineage``, ``timeout`` seconds,
``api_key_env`` naming the variable that holds the API key), ``console`` (the log) or ``none``.
The API key itself is read from the environment when events are sent, never from a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import ConfigError, Deployment

TRANSPORTS = ("file", "http", "console", "none")
DEFAULT_ENDPOINT = "/api/v1/lineage"
DEFAULT_TIMEOUT_SECONDS = 5.0
LINEAGE_DIR = "lineage"
EVENTS_FILE = "events.jsonl"
REGION_VARIABLES = {"aws": ("AWS_REGION", "AWS_DEFAULT_REGION")}


@dataclass(frozen=True)
class LineageConfig:
    """Validated lineage settings."""

    transport: str = "file"
    path: str | None = None
    url: str | None = None
    endpoint: str = DEFAULT_ENDPOINT
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    api_key_env: str | None = None

    def events_file(self, home: Path) -> Path:
        return Path(self.path) if self.path else home / LINEAGE_DIR / EVENTS_FILE

    def transport_options(self, home: Path, environ: Mapping[str, str]) -> dict[str, Any]:
        """The OpenLineage client's transport config; retries are the outbox's job, not its."""
        if self.transport == "file":
            return {"type": "file", "log_file_path": str(self.events_file(home)), "append": True}
        if self.transport == "console":
            return {"type": "console"}
        options: dict[str, Any] = {
            "type": "http",
            "url": self.url,
            "endpoint": self.endpoint,
            "timeout": self.timeout,
            "retry": {"total": 0, "connect": 0, "read": 0, "status_forcelist": []},
        }
        if self.api_key_env:
            key = environ.get(self.api_key_env, "")
            if not key:
                raise ConfigError(
                    f"lineage.api_key_env names {self.api_key_env}, which is not set. "
                    f"Set {self.api_key_env} to the catalog's API key."
                )
            options["auth"] = {"type": "api_key", "apiKey": key}
        return options


def lineage_config(
    deployment: Deployment, environ: Mapping[str, str] | None = None
) -> LineageConfig:
    """The deployment's lineage settings, or a ConfigError naming the setting and the fix."""
    environ = deployment.environ if environ is None else environ
    section = deployment.lineage
    transport = section.get("transport", "file")
    if transport not in TRANSPORTS:
        raise section.error(
            "transport", f"is {transport!r}", f"Set it to one of: {', '.join(TRANSPORTS)}."
        )
    timeout = section.get("timeout", DEFAULT_TIMEOUT_SECONDS)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise section.error("timeout", f"is {timeout!r}", "Set it to a number of seconds above 0.")
    config = LineageConfig(
        transport=transport,
        path=section.get("path"),
        url=section.get("url"),
        endpoint=section.get("endpoint", DEFAULT_ENDPOINT),
        timeout=float(timeout),
        api_key_env=section.get("api_key_env"),
    )
    if transport == "http":
        url = section.require(
            "url", "Set lineage.url to the catalog's base URL (DATAOPS__LINEAGE__URL=https://...)."
        )
        if not str(url).startswith(("http://", "https://")):
            raise section.error("url", f"is {url!r}", "Give an http:// or https:// URL.")
        config.transport_options(Path("."), environ)
    return config


def residency(deployment: Deployment, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Where the deployment keeps data, as far as its settings or the provider's SDK say."""
    environ = deployment.environ if environ is None else environ
    storage = deployment.storage
    region = storage.get("region") or next(
        (
            environ[name]
            for name in REGION_VARIABLES.get(deployment.target, ())
            if environ.get(name)
        ),
        None,
    )
    sovereign = storage.get("sovereign")
    return {
        "target": deployment.target,
        "environment": deployment.environment,
        "storage_backend": str(storage.get("backend")),
        "region": str(region) if region else None,
        "jurisdiction": storage.get("jurisdiction"),
        "sovereign": bool(sovereign) if sovereign is not None else None,
    }
