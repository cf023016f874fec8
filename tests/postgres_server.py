"""A real PostgreSQL server for the test session: ``initdb`` + ``pg_ctl`` on a free 127.0.0.1 port.

PostgreSQL refuses to run as root, so as root every server command runs as the ``postgres`` user
(``runuser -u postgres --``) in a directory it owns. Authentication is ``trust`` on loopback only.
Where ``initdb`` is missing: ``apt-get install -y --no-upgrade postgresql``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
from servers import free_port

SUPERUSER = "postgres"
DATABASE = "dagster"
UNUSED_PASSWORD = "trust-auth-ignores-passwords"


@dataclass(frozen=True)
class PostgresServer:
    """Where the session's server listens and which database the tests use."""

    host: str
    port: int
    user: str
    db: str

    def dagster_env(self) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables of ``deploy/instance/dagster.yaml`` for this server."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": UNUSED_PASSWORD,
            "DAGSTER_PG_DB": self.db,
        }


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        pytest.fail(
            f"PostgreSQL's {name} is not installed: apt-get install -y --no-upgrade postgresql"
        )
    return found


def _as_server_user(command: list[str]) -> list[str]:
    """As root, the command run as the server's user (``runuser`` lives in sbin, which a
    non-login shell's PATH may lack)."""
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if runuser is None:
        pytest.fail("util-linux's runuser is not installed: apt-get install -y util-linux")
    return [runuser, "-u", SUPERUSER, "--", *command]


def _run(command: list[str]) -> None:
    result = subprocess.run(
        _as_server_user(command), capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server with an empty ``dagster`` database; stopped after the session."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    workdir = Path(tempfile.mkdtemp(prefix="dataops-pg-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, user=SUPERUSER)
    data, port = workdir / "data", free_port()
    _run(
        [
            initdb,
            "-N",
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off"
    _run([pg_ctl, "-D", str(data), "-l", str(workdir / "log"), "-w", "-o", options, "start"])
    try:
        connection = psycopg2.connect(
            host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres"
        )
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {DATABASE}")
        finally:
            connection.close()
        yield PostgresServer(host="127.0.0.1", port=port, user=SUPERUSER, db=DATABASE)
    finally:
        _run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(workdir, ignore_errors=True)
