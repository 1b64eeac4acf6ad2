"""A tiny user-office REST API for the integration tests (it stands at the boundary the hub calls).

    python user_office_app.py PORT DATA.json TOKEN ACCOUNTS.json

GET /api/users/<username>/proposals with `Authorization: Bearer TOKEN` answers
{"proposals": [...]} from DATA.json ({username: [proposal, ...]}); GET /api/people/<sub>/account
answers {"username": ...} from ACCOUNTS.json ({sub: account}). Both files are re-read on every
request; an unknown user or person gets 404, a wrong token 401. Stopping the process is "the
user office is down".
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tornado import web


class TableHandler(web.RequestHandler):
    """One entry of a JSON table, for the bearer of the token."""

    def initialize(self, data: Path, token: str) -> None:
        self.data = data
        self.token = token

    def entry(self, key: str) -> object:
        if self.request.headers.get("Authorization") != f"Bearer {self.token}":
            raise web.HTTPError(401)
        table = json.loads(self.data.read_text())
        if key not in table:
            raise web.HTTPError(404)
        return table[key]


class ProposalsHandler(TableHandler):
    def get(self, username: str) -> None:
        self.write({"proposals": self.entry(username)})


class AccountHandler(TableHandler):
    def get(self, sub: str) -> None:
        self.write({"username": self.entry(sub)})


async def main() -> None:
    port, data, token, accounts = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    app = web.Application(
        [
            (r"/api/users/([^/]+)/proposals", ProposalsHandler, {"data": data, "token": token}),
            (r"/api/people/([^/]+)/account", AccountHandler, {"data": accounts, "token": token}),
        ]
    )
    app.listen(port, address="127.0.0.1")
    print(f"listening http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
