"""Run the test user-office API (user_office_app.py) as its own process, so tests can take it down."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx

from .process import LoggedProcess, free_port

APP = Path(__file__).resolve().parent / "user_office_app.py"


class UserOfficeService:
    """The user office: `{username: [proposal, ...]}` and `{sub: account}` served over HTTP with a bearer token."""

    def __init__(
        self, workdir: Path, proposals: dict[str, list[dict[str, Any]]], accounts: dict[str, str] | None = None
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.data_path = workdir / "user-office.json"
        self.accounts_path = workdir / "accounts.json"
        self.log_path = workdir / "user-office.log"
        self.data_path.write_text(json.dumps(proposals))
        self.accounts_path.write_text(json.dumps(accounts or {}))
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}/api/users/{{username}}/proposals"
        self.account_url = f"http://127.0.0.1:{self.port}/api/people/{{sub}}/account"
        self.process = LoggedProcess("the user office", self.log_path)

    def start(self) -> UserOfficeService:
        command = [sys.executable, str(APP), str(self.port), str(self.data_path), self.token, str(self.accounts_path)]
        self.process.start(command)

        def up() -> bool:
            try:
                return httpx.get(self.url.format(username="nobody"), timeout=2).status_code == 401
            except httpx.HTTPError:
                return False

        self.process.wait_answering(up, 20, interval=0.1)
        return self

    def stop(self) -> None:
        self.process.stop(10)
