"""The processes of the real components tests start: own session, output to a log, stopped for sure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_GIVEN: set[int] = set()


def free_port() -> int:
    """A port free now and not handed out before by this process.

    Components pick their ports before any of them binds: without the memory, the kernel may
    offer the same free port twice (a hub's proxy API once got the user office's port).
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll until predicate returns something truthy; fail the test with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class LoggedProcess:
    """One component (hub, OpenID provider, user office, demo script) run in the background."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def wait_answering(self, answers: Callable[[], bool], timeout: float, interval: float = 0.25) -> None:
        """Wait until `answers()`; fail at once, with the log, if the process exits first."""

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            return answers()

        wait_for(up, timeout, f"{self.name} to answer", interval)

    def stop(self, timeout: float = 30, whole_group: bool = False) -> None:
        """SIGTERM (to the process, or its whole session), then SIGKILL to the session after `timeout`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            if whole_group:
                os.killpg(self.process.pid, signal.SIGTERM)
            else:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL to the process alone, as a crash or an OOM kill would: no cleanup of any kind runs."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
