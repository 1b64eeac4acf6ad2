"""The shared squeue view, driven by a scripted fake query (the boundary to squeue)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import pytest

from daas_core.commands import CommandFailed
from daas_spawner.backends.slurm.commands import JobInfo
from daas_spawner.backends.slurm.queue import Phase, SlurmQueue

GUARD = 10.0  # seconds before a wait counts as hung; never a timing claim


def job(job_id: str, state: str) -> JobInfo:
    return JobInfo(job_id, state, "None", "node01" if state == "RUNNING" else "", "N/A")


def failure() -> CommandFailed:
    return CommandFailed("squeue", "gave no answer within 20 s", timed_out=True)


class FakeSqueue:
    """Answers with scripted views (a dict of JobInfo, or an exception to raise), then `default`."""

    def __init__(self) -> None:
        self.script: list[dict[str, JobInfo] | Exception] = []
        self.default: dict[str, JobInfo] | Exception = {}
        self.started: list[float] = []
        self.gate: asyncio.Event | None = None

    @property
    def calls(self) -> int:
        return len(self.started)

    async def __call__(self) -> dict[str, JobInfo]:
        self.started.append(time.monotonic())
        if self.gate is not None:
            await self.gate.wait()
        answer = self.script.pop(0) if self.script else self.default
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)


@pytest.fixture
async def make_queue():
    queues: list[SlurmQueue] = []

    def make(fake: FakeSqueue, interval: float = 60.0, busy_interval: float = 30.0) -> SlurmQueue:
        queue = SlurmQueue(fake, interval=interval, busy_interval=busy_interval)
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        for loop_task in (queue._loop, queue._inflight):
            if loop_task is not None and not loop_task.done():
                loop_task.cancel()
                with pytest.raises((asyncio.CancelledError, CommandFailed)):
                    await loop_task


async def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + GUARD
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


# -- one query at a time ------------------------------------------------------------------


async def test_concurrent_refreshes_share_one_query(make_queue):
    fake = FakeSqueue()
    fake.gate = asyncio.Event()
    queue = make_queue(fake)
    refreshes = [asyncio.ensure_future(queue.refresh()) for _ in range(5)]
    await wait_until(lambda: fake.calls == 1)
    await asyncio.sleep(0.01)
    fake.gate.set()
    await asyncio.gather(*refreshes)
    assert fake.calls == 1
    assert queue.queries == 1
    await queue.refresh()  # a later refresh is a new query
    assert fake.calls == 2


async def test_concurrent_refreshes_all_see_the_failure(make_queue):
    fake = FakeSqueue()
    fake.gate = asyncio.Event()
    fake.script = [failure()]
    queue = make_queue(fake)
    refreshes = [asyncio.ensure_future(queue.refresh()) for _ in range(3)]
    await wait_until(lambda: fake.calls == 1)
    fake.gate.set()
    results = await asyncio.gather(*refreshes, return_exceptions=True)
    assert [type(result) for result in results] == [CommandFailed] * 3
    assert fake.calls == 1


# -- what a view says about a job ---------------------------------------------------------


@pytest.mark.parametrize(
    "state, phase", [("PENDING", Phase.PENDING), ("RUNNING", Phase.ACTIVE), ("COMPLETED", Phase.ENDED)]
)
async def test_status_from_view(make_queue, state, phase):
    fake = FakeSqueue()
    fake.default = {"7": job("7", state)}
    queue = make_queue(fake)
    queue.track("7", submitted_at=time.monotonic())
    assert queue.status("7").phase is Phase.UNKNOWN
    assert queue.age is None
    await queue.refresh()
    status = queue.status("7")
    assert status.phase is phase
    assert status.info == job("7", state)
    assert status.ended is (phase is Phase.ENDED)
    assert queue.age is not None and queue.age >= 0


async def test_failed_query_keeps_the_last_view(make_queue):
    fake = FakeSqueue()
    fake.script = [{"7": job("7", "RUNNING")}, failure(), failure()]
    queue = make_queue(fake)
    queue.track("7")
    ended = []
    queue.on_end("7", lambda: ended.append("7"))
    await queue.refresh()
    for expected_failures in (1, 2):
        with pytest.raises(CommandFailed):
            await queue.refresh()
        assert queue.status("7").phase is Phase.ACTIVE
        assert queue.failures == expected_failures
        assert "gave no answer" in (queue.last_error or "")
    assert ended == []
    await queue.refresh()  # the default view: the job is gone now
    assert queue.status("7").phase is Phase.ENDED
    assert (queue.failures, queue.last_error) == (0, None)
    assert ended == ["7"]


async def test_failed_query_never_ends_an_unseen_job(make_queue):
    fake = FakeSqueue()
    fake.default = failure()
    queue = make_queue(fake)
    queue.track("7")  # re-attached after a restart: submitted_at 0
    for _ in range(3):
        with pytest.raises(CommandFailed):
            await queue.refresh()
        assert queue.status("7").phase is Phase.UNKNOWN
    status = await queue.current_status("7")  # swallows the failure
    assert status.phase is Phase.UNKNOWN
    assert queue.age is None


async def test_absent_job_unknown_until_a_view_started_after_submission(make_queue):
    fake = FakeSqueue()
    fake.gate = asyncio.Event()
    queue = make_queue(fake)
    older = asyncio.ensure_future(queue.refresh())
    await wait_until(lambda: fake.calls == 1)  # the query has started ...
    await asyncio.sleep(0.001)
    queue.track("8", submitted_at=time.monotonic())  # ... before this job was submitted
    fake.gate.set()
    await older
    assert queue.status("8").phase is Phase.UNKNOWN
    await asyncio.sleep(0.001)
    await queue.refresh()
    assert queue.status("8").phase is Phase.ENDED
    assert queue.status("8").info is None


async def test_absent_reattached_job_is_ended(make_queue):
    fake = FakeSqueue()
    queue = make_queue(fake)
    queue.track("9")
    status = await queue.current_status("9")
    assert status.phase is Phase.ENDED
    assert fake.calls == 1
    await queue.current_status("9")  # a view exists: no new query
    assert fake.calls == 1


# -- end callbacks ------------------------------------------------------------------------


async def test_on_end_fires_once(make_queue):
    fake = FakeSqueue()
    fake.script = [{"1": job("1", "PENDING")}, {"1": job("1", "RUNNING")}, {"1": job("1", "CANCELLED")}]
    queue = make_queue(fake)
    queue.track("1")
    calls: list[str] = []
    queue.on_end("1", lambda: calls.append("a"))
    queue.on_end("1", lambda: calls.append("b"))
    await queue.refresh()
    await queue.refresh()
    assert calls == []
    await queue.refresh()
    assert calls == ["a", "b"]
    await queue.refresh()  # default view: still ended, no second call
    await queue.refresh()
    assert calls == ["a", "b"]


async def test_on_end_unsubscribe(make_queue):
    fake = FakeSqueue()
    queue = make_queue(fake)
    queue.track("1")
    calls: list[str] = []
    unsubscribe = queue.on_end("1", lambda: calls.append("gone"))
    unsubscribe()
    unsubscribe()  # twice is harmless
    await queue.refresh()
    assert queue.status("1").ended
    assert calls == []


async def test_on_end_fires_from_the_loop(make_queue):
    fake = FakeSqueue()
    fake.default = {"1": job("1", "RUNNING")}
    queue = make_queue(fake, interval=0.01, busy_interval=0.01)
    queue.track("1")
    ended = asyncio.Event()
    queue.on_end("1", ended.set)
    await wait_until(lambda: fake.calls >= 2)
    assert not ended.is_set()
    fake.default = {"1": job("1", "FAILED")}
    await asyncio.wait_for(ended.wait(), GUARD)


async def test_changed_wakes_on_failure_and_success(make_queue):
    fake = FakeSqueue()
    fake.script = [failure(), {}]
    queue = make_queue(fake)
    for fails in (True, False):
        waiter = asyncio.ensure_future(queue.changed())
        await asyncio.sleep(0)
        assert not waiter.done()
        try:
            await queue.refresh()
        except CommandFailed:
            assert fails
        await asyncio.wait_for(waiter, GUARD)


# -- the background loop ------------------------------------------------------------------


async def test_loop_runs_only_while_jobs_are_tracked(make_queue):
    fake = FakeSqueue()
    queue = make_queue(fake, interval=0.01, busy_interval=0.01)
    await asyncio.sleep(0.05)
    assert fake.calls == 0  # nothing tracked: no loop, no query
    queue.track("1")
    queue.track("2")
    await wait_until(lambda: fake.calls >= 3)
    queue.untrack("1")
    await wait_until(lambda: fake.calls >= 5)  # still one tracked job
    queue.untrack("2")
    await asyncio.wait_for(queue._loop, GUARD)  # the loop ends on its own
    calls = fake.calls
    await asyncio.sleep(0.1)
    assert fake.calls == calls
    queue.track("3")  # and starts again
    await wait_until(lambda: fake.calls > calls)


async def test_running_jobs_are_queried_at_most_once_per_interval(make_queue):
    interval = 0.05
    fake = FakeSqueue()
    fake.default = {str(i): job(str(i), "RUNNING") for i in range(20)}
    queue = make_queue(fake, interval=interval, busy_interval=0.005)
    for job_id in fake.default:
        queue.track(job_id)
    window_start = time.monotonic()
    await asyncio.sleep(0.5)
    window = time.monotonic() - window_start
    assert 1 <= fake.calls <= window / interval + 1
    gaps = [b - a for a, b in itertools.pairwise(fake.started)]
    assert all(gap >= interval * 0.9 for gap in gaps), gaps


async def test_hurry_uses_the_busy_interval(make_queue):
    busy_interval = 0.01
    fake = FakeSqueue()
    fake.default = {"1": job("1", "PENDING"), "2": job("2", "RUNNING")}
    queue = make_queue(fake, interval=30.0, busy_interval=busy_interval)
    queue.track("1")
    queue.track("2")
    await asyncio.sleep(0.1)
    assert fake.calls == 0  # only the long interval so far
    async with queue.hurry("1"):
        await wait_until(lambda: fake.calls >= 6)
    gaps = [b - a for a, b in itertools.pairwise(fake.started)]
    assert all(gap >= busy_interval * 0.9 for gap in gaps), gaps
    await asyncio.sleep(0.05)  # the busy sleep that was running ends
    calls = fake.calls
    await asyncio.sleep(0.2)
    assert fake.calls == calls  # back to the long interval


async def test_hurry_right_after_a_query_waits_the_busy_interval(make_queue):
    busy_interval = 0.05
    fake = FakeSqueue()
    queue = make_queue(fake, interval=30.0, busy_interval=busy_interval)
    queue.track("1", submitted_at=time.monotonic() + 3600)  # stays UNKNOWN
    await queue.refresh()
    async with queue.hurry("1"):
        await wait_until(lambda: fake.calls >= 2)
    assert fake.started[1] - fake.started[0] >= busy_interval * 0.9


async def test_failures_back_off_up_to_the_interval(make_queue):
    interval, busy_interval = 0.08, 0.005
    fake = FakeSqueue()
    fake.default = failure()
    queue = make_queue(fake, interval=interval, busy_interval=busy_interval)
    delays: list[tuple[int, float]] = []
    next_delay = queue._next_delay

    def recording_next_delay() -> float:
        delay = next_delay()
        delays.append((queue.failures, delay))
        return delay

    queue._next_delay = recording_next_delay  # type: ignore[method-assign]
    queue.track("1", submitted_at=time.monotonic() + 3600)
    async with queue.hurry("1"):
        await wait_until(lambda: queue.failures >= 7)
        assert queue.status("1").phase is Phase.UNKNOWN
        fake.default = {}
        await wait_until(lambda: queue.failures == 0 and delays[-1][0] == 0)
    failing = [delay for failures, delay in delays if failures]
    assert failing == sorted(failing)  # backs off ...
    assert failing[0] > busy_interval
    assert max(delay for _, delay in delays) <= interval  # ... never beyond the interval
    assert failing[-1] == interval
    assert delays[-1] == (0, busy_interval)  # and recovers at once
    gaps = [b - a for a, b in itertools.pairwise(fake.started)]
    for k in range(6):  # after k + 1 failures in a row
        assert gaps[k] >= min(interval, busy_interval * 2 ** (k + 1)) * 0.9, gaps


@pytest.mark.parametrize(
    "failures, waiting, expected",
    [
        (0, False, 1.0),
        (0, True, 0.01),
        (1, True, 0.02),
        (3, True, 0.08),
        (10, True, 1.0),
        (1, False, 1.0),
        (50, False, 1.0),
    ],
)
async def test_next_delay(make_queue, failures, waiting, expected):
    queue = make_queue(FakeSqueue(), interval=1.0, busy_interval=0.01)
    queue.track("1")
    queue.failures = failures
    if waiting:
        async with queue.hurry("1"):
            assert queue._next_delay() == pytest.approx(expected)
    else:
        assert queue._next_delay() == pytest.approx(expected)


async def test_close_stops_the_loop_and_tracking_again_starts_one() -> None:
    squeue = FakeSqueue()
    queue = SlurmQueue(squeue, interval=0.01, busy_interval=0.01)
    queue.track("1")
    await asyncio.wait_for(queue.changed(), GUARD)
    await queue.close()
    calls = squeue.calls
    await asyncio.sleep(0.05)
    assert squeue.calls == calls  # no query after close, though a job is tracked
    queue.track("2")
    await asyncio.wait_for(queue.changed(), GUARD)
    assert squeue.calls > calls
    await queue.close()
