"""The exit codes a scheduler acts on, and the error that carries one to the command line."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What ``dataops trigger``, ``status`` and ``logs`` exit with; the public contract."""

    SUCCESS = 0
    RUN_FAILED = 1
    USAGE = 2
    TIMEOUT = 3
    REFUSED = 4
    UNREACHABLE = 5


class RemoteError(Exception):
    """A failure talking to a deployment, with the exit code a scheduler should see."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
