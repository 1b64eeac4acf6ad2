"""The data reader: listings, byte ranges and errors, in-process and as the real subprocess."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest

from daas_services.data.as_user import READER, ReaderError, ReaderSlots, UserReader
from daas_services.data.reader import answer, byte_range, error_document
from daas_services.data.service import parse_range

CONTENT = bytes(range(256)) * 4  # 1024 bytes


@pytest.fixture
def location(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    (root / "scan").mkdir(parents=True)
    (root / "scan" / "frames.bin").write_bytes(CONTENT)
    for index in range(5):
        (root / f"f{index}.txt").write_text(str(index))
    os.symlink("scan/frames.bin", root / "latest")
    os.symlink(tmp_path, root / "up")
    return root


def run(request: dict) -> tuple[dict, bytes]:
    out = io.BytesIO()
    try:
        answer(request, out)
    except Exception as err:
        return error_document(err), b""
    header, _, body = out.getvalue().partition(b"\n")
    return json.loads(header), body


def test_listing_is_sorted_paged_and_shows_links_as_links(location: Path) -> None:
    page, _ = run({"op": "list", "root": str(location), "names": [], "offset": 1, "limit": 3})
    assert page["total"] == 8 and page["offset"] == 1 and page["limit"] == 3
    assert [(e["name"], e["type"]) for e in page["entries"]] == [(f"f{i}.txt", "file") for i in (1, 2, 3)]
    everything, _ = run({"op": "list", "root": str(location), "names": [], "offset": 0, "limit": 100})
    types = {e["name"]: e["type"] for e in everything["entries"]}
    assert types["latest"] == "link" and types["up"] == "link" and types["scan"] == "directory"
    assert {e["name"]: e["size"] for e in everything["entries"]}["f4.txt"] == 1


@pytest.mark.parametrize(
    ("size", "start", "end", "suffix", "expected"),
    [
        (1024, None, None, 100, (924, 1023)),
        (1024, None, None, 5000, (0, 1023)),
        (1024, 10, 19, None, (10, 19)),
        (1024, 1000, None, None, (1000, 1023)),
        (1024, 1000, 5000, None, (1000, 1023)),
        (1024, 1024, None, None, None),
        (1024, None, None, 0, None),
        (0, None, None, 10, None),
    ],
)
def test_byte_ranges(size: int, start: int | None, end: int | None, suffix: int | None, expected) -> None:
    assert byte_range(size, start, end, suffix) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", {"start": 0, "end": 99}),
        ("bytes=100-", {"start": 100}),
        ("bytes=-50", {"suffix": 50}),
        ("bytes=5-1", None),
        ("bytes=0-1,5-9", None),
        ("bytes=-", None),
        ("items=0-1", None),
        (None, None),
        ("bytes=0-99\n", {"start": 0, "end": 99}),  # surrounding white space is dropped
        ("bytes=0-99\nX", None),
        ("bytes=" + "9" * 5000 + "-", {"start": 2**63 - 1}),  # past every file's end: the reader says 416
        ("bytes=0-" + "9" * 5000, {"start": 0, "end": 2**63 - 1}),
        ("bytes=-" + "9" * 5000, {"suffix": 2**63 - 1}),  # more than the file: the whole file
    ],
)
def test_range_headers(header: str | None, expected) -> None:
    assert parse_range(header) == expected


def test_reads_exactly_the_requested_bytes(location: Path) -> None:
    header, body = run({"op": "read", "root": str(location), "names": ["scan", "frames.bin"], "start": 10, "end": 19})
    assert (header["first"], header["last"], header["size"]) == (10, 19, 1024)
    assert body == CONTENT[10:20]
    header, body = run({"op": "read", "root": str(location), "names": ["latest"]})
    assert body == CONTENT and header["last"] == 1023
    header, _ = run({"op": "read", "root": str(location), "names": ["latest"], "start": 2000})
    assert header == {"error": {"status": 416, "message": "range not satisfiable"}, "size": 1024}


@pytest.mark.parametrize(
    ("request_", "status", "message"),
    [
        ({"op": "read", "names": ["scan"]}, 400, "not a file"),
        ({"op": "list", "names": ["f1.txt"]}, 400, "not a directory"),
        ({"op": "read", "names": ["missing"]}, 404, "no such file or directory"),
        ({"op": "list", "names": ["up"]}, 403, "leads outside its location"),
        ({"op": "read", "names": ["up"]}, 403, "leads outside its location"),
        ({"op": "delete", "names": []}, 400, "unknown operation"),
    ],
)
def test_errors_are_statuses_without_server_paths(location: Path, request_: dict, status: int, message: str) -> None:
    document, _ = run({"root": str(location), **request_})
    assert document["error"]["status"] == status
    assert message in document["error"]["message"]
    assert str(location) not in json.dumps(document)


async def test_the_reader_process_answers_and_streams(location: Path) -> None:
    reader = UserReader(prefix=[])
    listing = await reader.ask("nobody", {"op": "list", "root": str(location), "names": ["scan"]})
    assert [entry["name"] for entry in listing["entries"]] == ["frames.bin"]
    request = {"op": "read", "root": str(location), "names": ["latest"], "suffix": 24}
    header, body = await reader.stream("nobody", request)
    assert header["first"] == 1000
    assert b"".join([chunk async for chunk in body]) == CONTENT[1000:]
    with pytest.raises(ReaderError) as refused:
        await reader.ask("nobody", {"op": "list", "root": str(location), "names": ["up"]})
    assert refused.value.status == 403


async def test_user_names_that_are_not_unix_names_never_reach_the_prefix() -> None:
    with pytest.raises(ReaderError) as refused:
        await UserReader(prefix=["sudo", "-n", "-u", "{username}", "--"]).ask("-rf /", {"op": "list"})
    assert refused.value.status == 403


async def test_a_reader_that_cannot_run_is_a_bad_gateway() -> None:
    reader = UserReader(prefix=[], command=["/bin/false"])
    with pytest.raises(ReaderError) as failed:
        await reader.ask("nobody", {"op": "list"})
    assert failed.value.status == 502


# -- what one reader, and one person's readers, may cost -------------------------------------------


async def test_a_read_over_the_memory_limit_fails_cleanly(tmp_path: Path) -> None:
    """Within the preview's byte bound (114 MiB of chunk), but more than the reader's address space allows."""
    with h5py.File(tmp_path / "zeros.h5", "w") as f:
        f.create_dataset("zeros", shape=(30_000_000,), dtype="f4", chunks=(30_000_000,), compression="gzip")
        f["zeros"][:] = 0
    request = {"op": "hdf5", "root": str(tmp_path), "names": ["zeros.h5"], "dataset": "/zeros"}
    with pytest.raises(ReaderError) as refused:
        await UserReader(prefix=[], memory=224 << 20).ask("nobody", request)
    assert refused.value.status == 422
    assert "reading it needs more memory than a reader may use" in str(refused.value)
    preview = await UserReader(prefix=[], memory=1 << 30).ask("nobody", request)
    assert preview["data"][:2] == [0.0, 0.0]


def many_attributes(path: Path, count: int) -> Path:
    """A group with `count` attributes: describing the file takes seconds of CPU time."""
    with h5py.File(path, "w", libver="latest") as f:
        group = f.create_group("many")
        for index in range(count):
            group.attrs[f"a{index:06d}"] = np.int32(index)
    return path


async def test_a_read_over_the_cpu_limit_is_ended_by_the_kernel(tmp_path: Path) -> None:
    many_attributes(tmp_path / "many.h5", 40_000)
    request = {"op": "hdf5", "root": str(tmp_path), "names": ["many.h5"]}
    with pytest.raises(ReaderError) as ended:
        await UserReader(prefix=[], cpu_seconds=1).ask("nobody", request)
    assert ended.value.status == 504
    assert str(ended.value) == "reading needed more than the 1 s of CPU time a reader may use"


def processes_with(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return found.stdout.split()


async def test_a_timeout_kills_the_readers_whole_process_group() -> None:
    """A reader that started a child of its own (sudo starts the reader so): neither survives the timeout."""
    marker = f"reader-{uuid.uuid4().hex}"
    forks = f"import os, time; os.fork(); time.sleep(300)  # {marker}"
    reader = UserReader(prefix=[], command=[sys.executable, "-c", forks], timeout=1)
    with pytest.raises(ReaderError) as late:
        # Bounded: killing only the first process left its child holding the pipes, and the call hung.
        await asyncio.wait_for(reader.ask("nobody", {"op": "list"}), 30)
    wait_until(lambda: processes_with(marker) == [], "end of both processes", 10)
    assert (late.value.status, str(late.value)) == (504, "reading took longer than 1 s")


def wait_until(condition, what: str, timeout: float = 30) -> None:
    """A bounded wait for something that must happen (not a measure of how fast)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


def proc(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:
        return ""


def test_the_reader_dies_with_its_parent() -> None:
    """Whatever ends the reader's parent (sudo, killed by a SIGKILL it cannot pass on) ends the reader too."""
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess; subprocess.run({READER!r})"],
        stdin=subprocess.PIPE,  # never written to: the reader waits for its request
    )
    assert parent.stdin is not None
    with parent.stdin:
        children = lambda: proc(parent.pid, f"task/{parent.pid}/children").split()  # noqa: E731
        wait_until(children, "reader started")
        reader = int(children()[0])
        wait_until(lambda: "pipe_read" in proc(reader, "wchan"), "reader waiting for its request")
        parent.kill()
        parent.wait()
        # Gone, or a zombie that nothing reaps: either way it reads nothing more.
        wait_until(lambda: proc(reader, "stat").split(") ")[-1][:1] in ("", "Z"), "end of the orphaned reader")


async def test_a_person_has_at_most_per_person_readers_and_others_are_not_held_up() -> None:
    slots = ReaderSlots(per_person=2, wait=0.2)
    await slots.acquire("alice")
    await slots.acquire("alice")
    with pytest.raises(ReaderError) as busy:
        await slots.acquire("alice")
    assert (busy.value.status, str(busy.value)) == (429, "2 of your reads are running; try again when one has ended")
    await slots.acquire("bob")
    waiting = asyncio.ensure_future(slots.acquire("alice"))  # waits for one of alice's to end
    await asyncio.sleep(0)
    assert not waiting.done()
    slots.release("alice")
    await waiting
    for user in ("alice", "alice", "bob"):
        slots.release(user)
    for _ in range(2):  # all released: alice has both again
        await slots.acquire("alice")
