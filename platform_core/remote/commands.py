"""``dataops trigger``, ``dataops status`` and ``dataops logs``: a scheduler's view of a deployment.

The result goes to stdout (one line, or one JSON object with ``--json``), progress and errors to
stderr; the exit code is the contract of ``exit_codes.ExitCode``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from platform_core.remote.client import (
    FAILED,
    REQUEST_SECONDS,
    SUCCEEDED,
    TOKEN_VARIABLE,
    DeploymentClient,
    Run,
)
from platform_core.remote.exit_codes import ExitCode, RemoteError
from platform_core.remote.runs import follow, launch_or_reuse, parse_selection


def add_remote_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``trigger``, ``status`` and ``logs`` on the ``dataops`` parser."""
    trigger = commands.add_parser(
        "trigger",
        help="launch a run on a running deployment through its webserver (for schedulers)",
        description=f"Exit codes: {_exit_codes()}. A bearer token is read from {TOKEN_VARIABLE}.",
    )
    _url_option(trigger)
    trigger.add_argument(
        "--select", required=True, metavar="KEYS", help="comma-separated asset keys, one location"
    )
    trigger.add_argument("--partition", metavar="KEY", help="the partition key to run")
    trigger.add_argument("--wait", action="store_true", help="follow the run to its end")
    _timeout_option(trigger)
    trigger.add_argument(
        "--json", action="store_true", help="print run_id, status, url, start, end"
    )
    trigger.add_argument(
        "--run-key", metavar="K", help="reuse the queued, running or succeeded run of this key"
    )
    trigger.set_defaults(run=_command(_trigger))

    status = commands.add_parser(
        "status",
        help="a run's status; exits as trigger does (3 while it is still going)",
        description=f"Exit codes: {_exit_codes()}.",
    )
    status.add_argument("run_id", metavar="RUN_ID")
    _url_option(status)
    status.add_argument("--wait", action="store_true", help="follow the run to its end")
    _timeout_option(status)
    status.add_argument("--json", action="store_true", help="print run_id, status, url, start, end")
    status.set_defaults(run=_command(_status))

    logs = commands.add_parser(
        "logs",
        help="a run's event log; exits with the run's outcome",
        description=f"Exit codes: {_exit_codes()}.",
    )
    logs.add_argument("run_id", metavar="RUN_ID")
    _url_option(logs)
    _timeout_option(logs)
    logs.set_defaults(run=_command(_logs))


def _url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        required=True,
        metavar="URL",
        help="the webserver's base URL, e.g. https://dagster.example.com",
    )


def _timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help=f"seconds to wait for the run (and at most {REQUEST_SECONDS:g} per request)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _exit_codes() -> str:
    return ", ".join(f"{code.value} {code.name.lower().replace('_', ' ')}" for code in ExitCode)


def _command(
    handler: Callable[[argparse.Namespace, DeploymentClient], int],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            request_seconds = min(REQUEST_SECONDS, args.timeout or REQUEST_SECONDS)
            client = DeploymentClient(args.url, os.environ.get(TOKEN_VARIABLE), request_seconds)
            return handler(args, client)
        except RemoteError as exc:
            _echo(f"dataops {args.command}: {exc}")
            return exc.code

    return run


def _trigger(args: argparse.Namespace, client: DeploymentClient) -> int:
    keys = parse_selection(args.select)
    run, launched = launch_or_reuse(client, keys, args.partition, args.run_key)
    if launched:
        _echo(f"launched run {run.run_id} of {', '.join(keys)}: {run.url}")
    else:
        _echo(
            f"run key {args.run_key!r} names run {run.run_id} ({run.status}): not launching again"
        )
    if args.wait:
        run = follow(client, run, args.timeout, _echo)
        return _outcome(run, args.json, waited=args.timeout)
    _print(run, args.json)
    return ExitCode.SUCCESS


def _status(args: argparse.Namespace, client: DeploymentClient) -> int:
    run = client.run(args.run_id)
    if args.wait:
        run = follow(client, run, args.timeout, _echo)
    return _outcome(run, args.json, waited=args.timeout if args.wait else 0.0)


def _logs(args: argparse.Namespace, client: DeploymentClient) -> int:
    for line in client.events(args.run_id):
        print(line)
    return _outcome(client.run(args.run_id), as_json=None, waited=0.0)


def _outcome(run: Run, as_json: bool | None, waited: float | None) -> int:
    """Print the run (unless ``as_json`` is None) and return the exit code of its status."""
    if as_json is not None:
        _print(run, as_json)
    if run.status == SUCCEEDED:
        return ExitCode.SUCCESS
    if run.status in FAILED:
        _echo(f"run {run.run_id} ended {run.status}: {run.url}")
        return ExitCode.RUN_FAILED
    after = f" after {waited:g} s" if waited else ""
    _echo(f"run {run.run_id} is still {run.status}{after}; it keeps going: {run.url}")
    return ExitCode.TIMEOUT


def _print(run: Run, as_json: bool) -> None:
    print(json.dumps(run.as_json()) if as_json else f"{run.run_id} {run.status} {run.url}")


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
