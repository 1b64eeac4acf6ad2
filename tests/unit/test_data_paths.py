"""Path safety of the data service: request paths (pure) and symlinks on a real filesystem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daas_services.data.paths import DataPath, PathRefused, parse_request_path, resolve_inside


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("20231234/raw", DataPath("20231234", "raw", ())),
        ("20231234/raw/", DataPath("20231234", "raw", ())),
        ("20231234/raw/scan_001/data.h5", DataPath("20231234", "raw", ("scan_001", "data.h5"))),
        ("20231234/processed/a b/ü.txt", DataPath("20231234", "processed", ("a b", "ü.txt"))),
        ("MX-42/raw/..hidden", DataPath("MX-42", "raw", ("..hidden",))),
        ("20231234/raw/dir/", DataPath("20231234", "raw", ("dir",))),
    ],
)
def test_plain_names_are_accepted(path: str, expected: DataPath) -> None:
    assert parse_request_path(path) == expected


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("20231234/raw/../../etc/passwd", 400, "may not contain . or .."),
        ("20231234/raw/..", 400, "may not contain . or .."),
        ("20231234/raw/./x", 400, "may not contain . or .."),
        ("20231234/raw//etc/passwd", 400, "empty part"),
        ("20231234/raw/a//b", 400, "empty part"),
        ("/etc/passwd", 400, "empty part"),
        ("../20231234/raw", 400, "may not contain . or .."),
        ("20231234/../raw", 400, "may not contain . or .."),
        ("20231234/raw/%2e%2e/x", 400, "encoded characters"),
        ("20231234/raw/%2E%2E%2Fetc", 400, "encoded characters"),
        ("20231234/raw/%252e%252e/x", 400, "encoded characters"),
        ("20231234/raw/a\x00b", 400, "control characters"),
        ("20231234/raw/a\nb", 400, "control characters"),
        ("20231234/raw/..\\..\\etc", 400, "backslash"),
        ("20231234/raw/" + "a" * 256, 400, "name in the path is too long"),
        ("20231234/raw/" + "/".join(["abcdefgh"] * 500), 400, "path is too long"),
        ("20231234", 404, "name a proposal"),
        ("", 404, "name a proposal"),
        ("20231234/RAW", 404, "no such location"),
    ],
)
def test_unsafe_paths_are_refused(path: str, status: int, message: str) -> None:
    with pytest.raises(PathRefused) as refused:
        parse_request_path(path)
    assert refused.value.status == status
    assert message in str(refused.value)
    assert "/etc" not in str(refused.value)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A/raw with a file, a folder, an inner link, and links escaping into B and to /."""
    a_raw, b_raw = tmp_path / "A" / "raw", tmp_path / "B" / "raw"
    (a_raw / "scan").mkdir(parents=True)
    b_raw.mkdir(parents=True)
    (a_raw / "scan" / "data.h5").write_bytes(b"x")
    (b_raw / "secret.h5").write_bytes(b"s")
    os.symlink("scan/data.h5", a_raw / "latest.h5")
    os.symlink(b_raw, a_raw / "to-b")
    os.symlink("../../B/raw/secret.h5", a_raw / "sneaky.h5")
    os.symlink("/", a_raw / "root")
    return tmp_path


def test_resolve_inside_follows_links_that_stay_inside(tree: Path) -> None:
    root = str(tree / "A" / "raw")
    assert resolve_inside(root, ()) == os.path.realpath(root)
    assert resolve_inside(root, ("latest.h5",)) == os.path.realpath(tree / "A/raw/scan/data.h5")
    assert resolve_inside(root, ("scan", "missing")) == os.path.realpath(tree / "A/raw/scan") + "/missing"


@pytest.mark.parametrize("names", [("to-b",), ("to-b", "secret.h5"), ("sneaky.h5",), ("root", "etc", "passwd")])
def test_resolve_inside_refuses_links_out_of_the_location(tree: Path, names: tuple[str, ...]) -> None:
    with pytest.raises(PathRefused) as refused:
        resolve_inside(str(tree / "A" / "raw"), names)
    assert refused.value.status == 403
    assert str(tree) not in str(refused.value)


def test_a_sibling_with_the_same_prefix_is_outside(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw2").mkdir()
    os.symlink("../raw2", tmp_path / "raw" / "next")
    with pytest.raises(PathRefused):
        resolve_inside(str(tmp_path / "raw"), ("next",))
