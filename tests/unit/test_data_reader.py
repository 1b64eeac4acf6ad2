"""The data reader: listings, byte ranges and errors, in-process and as the real subprocess."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from daas_services.data.as_user import ReaderError, UserReader
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
