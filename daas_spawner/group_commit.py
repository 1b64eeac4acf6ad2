"""One commit of the hub's database for all the spawner states saved in one turn of the event loop.

A checkpoint is committed before the backend goes on (a hub that dies finds what it made), and a
bootstrap secret is answered only once its redemption is stored. The hub's database session is
synchronous and runs on the event loop: with SQLite every commit writes and syncs the file while
nothing else runs. In a storm of 100 spawns the hub spent over half its busy time in commits, most
of them the spawners' own (benchmarks/RESULTS.md, issue #21). So the states saved while the loop
runs what is ready share one commit at its next turn; each saver waits for that commit, so every
state is still stored before its saver goes on.
"""

from __future__ import annotations

import asyncio
from typing import Any


class GroupCommit:
    """`await commit(session)`: returns once a commit that began after the call has succeeded."""

    def __init__(self) -> None:
        self._due: dict[int, asyncio.Future[None]] = {}  # by id(session): a hub has one, tests may have more

    async def commit(self, session: Any) -> None:
        due = self._due.get(id(session))
        if due is None:
            loop = asyncio.get_running_loop()
            due = self._due[id(session)] = loop.create_future()
            loop.call_soon(self._commit, session, due)
        await asyncio.shield(due)  # one saver cancelled does not cancel the others' commit

    def _commit(self, session: Any, due: asyncio.Future[None]) -> None:
        del self._due[id(session)]
        try:
            session.commit()
        except Exception as err:  # every saver of this turn sees why its state was not stored
            due.set_exception(err)
            due.exception()  # retrieved here too: all its savers may have been cancelled meanwhile
        else:
            due.set_result(None)


group_commit = GroupCommit()
