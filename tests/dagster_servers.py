"""The real ``dagster-webserver``, optionally ``dagster-daemon``, and code servers, for tests.

Each runs as its own process group, stopped whole with what it started, with ``home`` as
``DAGSTER_HOME`` and local storage under it, no deployment variables from the calling shell,
and its output in ``home/<name>.log``.
``dagster_servers`` starts the webserver on a free 127.0.0.1 port, and the daemon; it is
entered once the daemon's run queue reports healthy, so queued runs are dequeued.
``code_servers`` serves code locations over gRPC, as a deployment's code servers do, so the
webserver and the daemon share them instead of each loading every location itself.
The instance's storage is created before any of them starts: processes starting together would
otherwise each try to create it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import dagster as dg
import pytest
import requests
from conftest import OWNER_SECRETS
from servers import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STARTUP_SECONDS = 120.0
STOP_SECONDS = 2.0
QUEUE_HEALTH = """
{ instance { daemonHealth { daemonStatus(daemonType: "QUEUED_RUN_COORDINATOR") { healthy } } } }
"""

Process = tuple[subprocess.Popen[bytes], Path]


@contextmanager
def code_servers(
    home: Path, modules: Mapping[str, str], env: Mapping[str, str] | None = None
) -> Iterator[Path]:
    """A workspace file naming a gRPC code server per ``location: module``, while they run."""
    _create_storage(home)
    ports = {location: free_port() for location in modules}
    with ExitStack() as stack:
        processes = {
            location: stack.enter_context(
                _process(
                    ["dagster", "api", "grpc", "-m", module, "-h", "127.0.0.1"]
                    + ["-p", str(ports[location])],
                    home,
                    location,
                    env,
                )
            )
            for location, module in modules.items()
        }
        for location, process in processes.items():
            port = ports[location]
            _wait(lambda port=port: _listens(port), [process], f"code server {location}")
        workspace = home / "workspace.yaml"
        workspace.write_text(
            "load_from:\n"
            + "".join(
                f"  - grpc_server: {{host: 127.0.0.1, port: {port}, location_name: {location}}}\n"
                for location, port in ports.items()
            )
        )
        yield workspace


@contextmanager
def dagster_servers(
    home: Path,
    workspaces: Sequence[Path],
    env: Mapping[str, str] | None = None,
    daemon: bool = False,
) -> Iterator[str]:
    """The webserver's base URL while it (and the daemon) run on ``workspaces``."""
    _create_storage(home)
    workspace_args = [arg for path in workspaces for arg in ("-w", str(path))]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        command = ["dagster-webserver", *workspace_args, "-h", "127.0.0.1", "-p", str(port)]
        processes = [stack.enter_context(_process(command, home, "webserver", env))]
        if daemon:
            command = ["dagster-daemon", "run", *workspace_args]
            processes.append(stack.enter_context(_process(command, home, "daemon", env)))
        _wait(lambda: requests.get(f"{url}/server_info", timeout=2).ok, processes, "webserver")
        if daemon:
            _wait(lambda: _queue_healthy(url), processes, "dagster-daemon")
        yield url


def _create_storage(home: Path) -> None:
    with dg.DagsterInstance.local_temp(tempdir=str(home)):
        pass


@contextmanager
def _process(
    command: list[str], home: Path, name: str, env: Mapping[str, str] | None
) -> Iterator[Process]:
    full_env = {
        key: value for key, value in os.environ.items() if not key.startswith(("DATAOPS_", "AWS_"))
    }
    full_env.update(
        DAGSTER_HOME=str(home),
        DATAOPS_LOCAL_ROOT=str(home / "storage"),
        **OWNER_SECRETS,
        PATH=f"{BIN}:{os.environ['PATH']}",
        **(env or {}),
    )
    log = home / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            cwd=ROOT,
            env=full_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, log
    finally:
        _signal(process, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_SECONDS)
        _signal(process, signal.SIGKILL)
        process.wait(timeout=10)


def _signal(process: subprocess.Popen[bytes], number: signal.Signals) -> None:
    """Signal the process's whole group: the runs a code server started die with it."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, number)


def _wait(ready: Callable[[], bool], processes: Sequence[Process], what: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while not _answers(ready):
        for process, log in processes:
            assert process.poll() is None, log.read_text()[-3000:]
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not get ready within {STARTUP_SECONDS:g} s")
        time.sleep(0.3)


def _answers(ready: Callable[[], bool]) -> bool:
    try:
        return ready()
    except requests.RequestException:
        return False


def _listens(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _queue_healthy(url: str) -> bool:
    answer = requests.post(f"{url}/graphql", json={"query": QUEUE_HEALTH}, timeout=10).json()
    return bool(answer["data"]["instance"]["daemonHealth"]["daemonStatus"]["healthy"])


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    """The ``data`` of one GraphQL call to the webserver at ``url``; errors fail the test."""
    response = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]
