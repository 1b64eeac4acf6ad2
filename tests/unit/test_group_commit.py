"""Spawner states saved in one turn of the event loop share one commit of the hub's database (#21)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Column, Integer, String, create_engine, event
from sqlalchemy.orm import Session, declarative_base

from daas_spawner.group_commit import GroupCommit

Base = declarative_base()


class Row(Base):
    __tablename__ = "rows"
    id = Column(Integer, primary_key=True)
    state = Column(String, nullable=False)


@pytest.fixture
def session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/hub.sqlite")
    Base.metadata.create_all(engine)
    with Session(engine) as db:
        db.commits = []
        event.listen(db, "after_commit", lambda s: db.commits.append(s))
        yield db


def stored(db: Session) -> dict[int, str]:
    """What another connection reads: only committed rows."""
    with Session(db.get_bind()) as other:
        return {row.id: row.state for row in other.query(Row)}


async def test_states_saved_in_one_turn_share_one_commit_and_each_is_stored_when_its_save_returns(session):
    group = GroupCommit()

    async def save(n: int) -> dict[int, str]:
        session.add(Row(id=n, state=f"checkpoint {n}"))
        await group.commit(session)
        return stored(session)

    seen = await asyncio.gather(*(save(n) for n in range(10)))
    assert len(session.commits) == 1
    assert all(len(after) == 10 for after in seen)
    session.add(Row(id=99, state="alone"))
    await group.commit(session)  # a lone save commits at the next turn
    assert len(session.commits) == 2 and stored(session)[99] == "alone"


async def test_a_failed_commit_reaches_every_saver_of_that_turn(session):
    group = GroupCommit()
    session.add(Row(id=1, state="first"))
    await group.commit(session)

    async def save(n: int) -> None:
        session.add(Row(id=1, state=f"duplicate {n}"))  # the same primary key: the commit fails
        await group.commit(session)

    results = await asyncio.gather(save(2), save(3), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results)
    session.rollback()
    assert stored(session) == {1: "first"}


async def test_a_cancelled_saver_does_not_cancel_the_commit_of_the_others(session):
    group = GroupCommit()
    session.add(Row(id=1, state="kept"))
    cancelled = asyncio.ensure_future(group.commit(session))
    waiting = asyncio.ensure_future(group.commit(session))
    await asyncio.sleep(0)
    cancelled.cancel()  # before the commit: it runs at the next turn
    await waiting
    assert cancelled.cancelled()
    assert stored(session) == {1: "kept"}
