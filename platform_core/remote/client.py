"""``DeploymentClient``: the GraphQL calls a scheduler needs, each failure mapped to an exit code.

Launching and polling a run go through Dagster's own ``DagsterGraphQLClient``; what it lacks
(which code location holds an asset, runs by tag, run times, the event log) are plain GraphQL
queries over the same transport, so every call fails the same way: refused (401/403/407 from an
authenticating proxy, or Dagster's ``UnauthorizedError``), unreachable (connection refused, name
not resolved, 502/503/504), timed out, or a usage error (wrong URL, unknown asset or run).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from platform_core.remote.exit_codes import ExitCode, RemoteError

TOKEN_VARIABLE = "DATAOPS_TRIGGER_TOKEN"
REQUEST_SECONDS = 60.0
ASSET_JOB = "__ASSET_JOB"
PARTITION_TAG = "dagster/partition"
SUCCEEDED = "SUCCESS"
FAILED = ("FAILURE", "CANCELED")
REFUSED_HTTP = (401, 403, 407)
UNAVAILABLE_HTTP = (502, 503, 504)
NOT_GRAPHQL_HTTP = (404, 405)
BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
EVENTS_PAGE = 1000

LOCATE = """
query Locate($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    isMaterializable
    isPartitioned
    repository { name location { name } }
  }
}
"""

RUN_FIELDS = """
fragment RunFields on Run {
  runId status startTime endTime
  assetSelection { path }
  tags { key value }
}
"""

RUN = (
    """
query Run($id: ID!) {
  runOrError(runId: $id) {
    __typename
    ...RunFields
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""
    + RUN_FIELDS
)

RUNS_BY_TAG = (
    """
query RunsByTag($tag: ExecutionTag!, $statuses: [RunStatus!]) {
  runsOrError(filter: {tags: [$tag], statuses: $statuses}, limit: 1) {
    __typename
    ... on Runs { results { ...RunFields } }
    ... on PythonError { message }
  }
}
"""
    + RUN_FIELDS
)

EVENTS = """
query Events($id: ID!, $cursor: String, $limit: Int) {
  logsForRun(runId: $id, afterCursor: $cursor, limit: $limit) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on MessageEvent { timestamp level stepKey message eventType }
        ... on ExecutionStepFailureEvent { error { ...Error } }
        ... on RunFailureEvent { error { ...Error } }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
fragment Error on PythonError { message errorChain { error { message } } }
"""


@dataclass(frozen=True)
class Run:
    """One run as a scheduler reports it: where to see it, how it ended, when."""

    run_id: str
    status: str
    url: str
    start: float | None
    end: float | None
    asset_keys: tuple[str, ...]
    tags: Mapping[str, str]

    def as_json(self) -> dict[str, str | None]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "url": self.url,
            "start": _iso(self.start),
            "end": _iso(self.end),
        }


@dataclass(frozen=True)
class CodeLocation:
    """Where a selection of assets lives in the deployment's workspace; which are partitioned."""

    location: str
    repository: str
    partitioned_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogLine:
    """One event of a run's log, as a scheduler's job log shows it."""

    timestamp: datetime
    level: str
    step: str | None
    message: str

    def __str__(self) -> str:
        when = self.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return f"{when} {self.level:<8} {self.step or '-'} {self.message}"


def is_finished(status: str) -> bool:
    return status == SUCCEEDED or status in FAILED


def base_url(url: str) -> str:
    """The webserver's base URL, checked: http(s), a host, no credentials, no query."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(ExitCode.USAGE, f"--url {url!r} is not an http(s) URL of a webserver")
    if parts.username or parts.password:
        raise RemoteError(
            ExitCode.USAGE,
            f"--url must not hold credentials; put a bearer token in {TOKEN_VARIABLE} instead",
        )
    if parts.query or parts.fragment:
        raise RemoteError(ExitCode.USAGE, f"--url {url!r} must not have a query or fragment")
    return url.rstrip("/")


class DeploymentClient:
    """A running deployment's webserver, reached at ``url`` (``/graphql`` below it)."""

    def __init__(
        self, url: str, token: str | None = None, request_seconds: float = REQUEST_SECONDS
    ) -> None:
        from dagster_graphql import DagsterGraphQLClient
        from gql import Client
        from gql.transport.requests import RequestsHTTPTransport

        self.url = base_url(url)
        self.request_seconds = request_seconds
        self._token_set = bool(token)
        headers = {}
        if token:
            if not BEARER_TOKEN.fullmatch(token):
                raise RemoteError(
                    ExitCode.USAGE,
                    f"{TOKEN_VARIABLE} is not a bearer token (letters, digits and -._~+/ only)",
                )
            headers["Authorization"] = f"Bearer {token}"
        transport = RequestsHTTPTransport(
            url=f"{self.url}/graphql", headers=headers, timeout=request_seconds, retries=0
        )
        self._graphql = Client(transport=transport)
        self._dagster = DagsterGraphQLClient(self.url, transport=transport)

    def run_url(self, run_id: str) -> str:
        return f"{self.url}/runs/{run_id}"

    def locate(self, keys: Sequence[str]) -> CodeLocation:
        """The one code location that materialises every key; a usage error otherwise."""
        variables = {"keys": [{"path": key.split("/")} for key in keys]}
        nodes = self._query(LOCATE, variables, "looking up the assets")["assetNodes"]
        where: dict[str, set[tuple[str, str]]] = {key: set() for key in keys}
        partitioned = set()
        for node in nodes:
            key = "/".join(node["assetKey"]["path"])
            if node["isMaterializable"] and key in where:
                repository = node["repository"]
                where[key].add((repository["location"]["name"], repository["name"]))
                if node["isPartitioned"]:
                    partitioned.add(key)
        unknown = [key for key, places in where.items() if not places]
        if unknown:
            raise RemoteError(
                ExitCode.USAGE,
                f"no code location of {self.url} materialises {', '.join(unknown)}",
            )
        places = {place for found in where.values() for place in found}
        if len(places) > 1:
            by_location: dict[str, list[str]] = {}
            for key, found in where.items():
                for location, _ in sorted(found):
                    by_location.setdefault(location, []).append(key)
            owners = "; ".join(f"{loc}: {', '.join(ks)}" for loc, ks in sorted(by_location.items()))
            raise RemoteError(
                ExitCode.USAGE,
                f"--select spans code locations ({owners}); trigger one code location at a time",
            )
        [(location, repository)] = places
        return CodeLocation(location, repository, tuple(k for k in keys if k in partitioned))

    def launch(self, where: CodeLocation, keys: Sequence[str], tags: Mapping[str, str]) -> str:
        """Launch one run of the assets ``keys`` in ``where``; its run id."""
        from dagster_graphql import DagsterGraphQLClientError

        try:
            with self._answers("launching the run"):
                return self._dagster.submit_job_execution(
                    ASSET_JOB,
                    repository_location_name=where.location,
                    repository_name=where.repository,
                    tags=dict(tags),
                    asset_selection=[key.split("/") for key in keys],
                )
        except DagsterGraphQLClientError as exc:
            kind, detail = (exc.args + ("", ""))[:2]
            code = ExitCode.REFUSED if kind == "UnauthorizedError" else ExitCode.USAGE
            raise RemoteError(
                code, f"{self.url} did not launch the run: {kind}: {detail}"
            ) from None

    def find_run(self, tag: tuple[str, str], statuses: Sequence[str]) -> Run | None:
        """The newest run carrying ``tag`` whose status is one of ``statuses``."""
        key, value = tag
        variables = {"tag": {"key": key, "value": value}, "statuses": list(statuses)}
        found = self._query(RUNS_BY_TAG, variables, "looking up runs")["runsOrError"]
        if found["__typename"] != "Runs":
            raise RemoteError(
                ExitCode.USAGE, f"{self.url} could not list runs: {found.get('message')}"
            )
        return next((self._run(run) for run in found["results"]), None)

    def run(self, run_id: str) -> Run:
        found = self._query(RUN, {"id": run_id}, "reading the run")["runOrError"]
        if found["__typename"] != "Run":
            raise RemoteError(ExitCode.USAGE, f"{self.url} has no run {run_id!r}")
        return self._run(found)

    def status(self, run_id: str) -> str:
        """The run's status (``QUEUED``, ``STARTED``, ``SUCCESS``, ``FAILURE``...)."""
        from dagster_graphql import DagsterGraphQLClientError

        try:
            with self._answers("reading the run's status"):
                return self._dagster.get_run_status(run_id).value
        except DagsterGraphQLClientError as exc:
            kind, detail = (exc.args + ("", ""))[:2]
            if kind == "RunNotFoundError":
                raise RemoteError(ExitCode.USAGE, f"{self.url} has no run {run_id!r}") from None
            raise RemoteError(
                ExitCode.USAGE, f"{self.url} could not read run {run_id}: {detail}"
            ) from None

    def events(self, run_id: str) -> Iterator[LogLine]:
        """The run's event log, oldest first, read a page at a time."""
        cursor = None
        while True:
            variables = {"id": run_id, "cursor": cursor, "limit": EVENTS_PAGE}
            page = self._query(EVENTS, variables, "reading the run's log")["logsForRun"]
            if page["__typename"] != "EventConnection":
                raise RemoteError(ExitCode.USAGE, f"{self.url} has no run {run_id!r}")
            for event in page["events"]:
                if "message" not in event:
                    continue
                message = event["message"] or event["eventType"] or event["__typename"]
                yield LogLine(
                    timestamp=datetime.fromtimestamp(int(event["timestamp"]) / 1000, UTC),
                    level=event["level"],
                    step=event["stepKey"],
                    message="\n".join([message, *_error_lines(event.get("error"))]),
                )
            if not page["hasMore"] or page["cursor"] == cursor:
                return
            cursor = page["cursor"]

    def _run(self, fields: Mapping[str, Any]) -> Run:
        return Run(
            run_id=fields["runId"],
            status=fields["status"],
            url=self.run_url(fields["runId"]),
            start=fields["startTime"],
            end=fields["endTime"],
            asset_keys=tuple("/".join(k["path"]) for k in fields["assetSelection"] or ()),
            tags={tag["key"]: tag["value"] for tag in fields["tags"]},
        )

    def _query(self, query: str, variables: Mapping[str, Any], action: str) -> dict[str, Any]:
        from gql import GraphQLRequest

        with self._answers(action):
            return self._graphql.execute(GraphQLRequest(query, variable_values=dict(variables)))

    @contextmanager
    def _answers(self, action: str) -> Iterator[None]:
        """Turn a transport failure into a ``RemoteError`` with the scheduler's exit code.

        ``DagsterGraphQLClient`` wraps transport failures in ``DagsterGraphQLClientError``; one
        that wraps none (a GraphQL error type such as ``RunNotFoundError``) passes through.
        """
        from dagster_graphql import DagsterGraphQLClientError
        from gql.transport.exceptions import TransportError

        transport_failures = (TransportError, requests.RequestException)
        try:
            yield
        except (*transport_failures, DagsterGraphQLClientError) as exc:
            if not any(isinstance(cause, transport_failures) for cause in _causes(exc)):
                raise
            raise self._failure(exc, action) from None

    def _failure(self, exc: BaseException, action: str) -> RemoteError:
        from gql.transport.exceptions import (
            TransportProtocolError,
            TransportQueryError,
            TransportServerError,
        )

        for cause in _causes(exc):
            if isinstance(cause, requests.exceptions.ConnectTimeout):
                return self._unreachable(cause)
            if isinstance(cause, requests.exceptions.Timeout):
                return RemoteError(
                    ExitCode.TIMEOUT,
                    f"{self.url} did not answer within {self.request_seconds:g} s while "
                    f"{action}; whatever it already accepted keeps going (a run it launched "
                    "keeps running)",
                )
            if isinstance(cause, requests.exceptions.ConnectionError):
                return self._unreachable(cause)
            if isinstance(cause, TransportServerError):
                return self._http_failure(cause.code, action)
            if isinstance(cause, TransportQueryError):
                return RemoteError(
                    ExitCode.USAGE, f"{self.url} rejected the query while {action}: {cause}"
                )
            if isinstance(cause, TransportProtocolError):
                return RemoteError(
                    ExitCode.USAGE,
                    f"{self.url}/graphql did not answer as a Dagster webserver while {action} "
                    f"(a proxy's login page? then set {TOKEN_VARIABLE})",
                )
        return RemoteError(ExitCode.UNREACHABLE, f"{self.url} failed while {action}: {exc}")

    def _http_failure(self, status: int | None, action: str) -> RemoteError:
        if status in REFUSED_HTTP:
            fix = (
                f"the token in {TOKEN_VARIABLE} was refused"
                if self._token_set
                else f"set {TOKEN_VARIABLE} to a bearer token it accepts"
            )
            return RemoteError(
                ExitCode.REFUSED, f"{self.url} refused {action} (HTTP {status}): {fix}"
            )
        if status in NOT_GRAPHQL_HTTP:
            return RemoteError(
                ExitCode.USAGE,
                f"{self.url} has no GraphQL API at /graphql (HTTP {status}): check --url",
            )
        if status in UNAVAILABLE_HTTP or (status or 500) >= 500:
            return RemoteError(
                ExitCode.UNREACHABLE, f"{self.url} is unavailable (HTTP {status}) while {action}"
            )
        return RemoteError(ExitCode.USAGE, f"{self.url} answered HTTP {status} while {action}")

    def _unreachable(self, exc: BaseException) -> RemoteError:
        reason = re.search(r"\[Errno [^\]]+\][^)'\"]*", str(exc))
        detail = reason.group(0).strip() if reason else type(exc).__name__
        return RemoteError(
            ExitCode.UNREACHABLE, f"deployment at {self.url} is unreachable: {detail}"
        )


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _error_lines(error: Mapping[str, Any] | None) -> list[str]:
    """An event's error and the errors that caused it, one message each."""
    if not error:
        return []
    chain = [error["message"], *(link["error"]["message"] for link in error["errorChain"])]
    return [message.rstrip() for message in chain]


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")
