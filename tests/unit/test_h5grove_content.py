"""h5grove's answers as the reader computes them, on real HDF5 files: values, links and byte bounds."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from h5grove.content import create_content
from h5grove.encoders import encode

from daas_services.data.h5grove_api import parse_query
from daas_services.data.h5grove_content import h5grove_answer
from daas_services.data.hdf5 import Hdf5Error
from daas_services.data.reader import answer, error_document

FRAMES = np.arange(10 * 32 * 32, dtype=np.uint16).reshape(10, 32, 32)


@pytest.fixture
def nexus(tmp_path: Path) -> Path:
    """A NeXus scan whose /entry/elsewhere is an external link to a real, readable file."""
    with h5py.File(tmp_path / "other.h5", "w") as other:
        other["values"] = np.arange(3)
    data = tmp_path / "raw"
    data.mkdir()
    path = data / "scan.nxs"
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        plot = entry.create_group("data")
        plot.attrs.update({"NX_class": "NXdata", "signal": "data", "axes": np.array([b".", b".", b"x"])})
        plot.create_dataset("data", data=FRAMES, chunks=(1, 32, 32), compression="gzip")
        plot["x"] = np.linspace(0.0, 1.0, 32)
        entry["title"] = "Strain scan"
        entry["half"] = np.arange(4, dtype=np.float16)
        entry["empty"] = h5py.Empty("f8")
        entry["signal"] = h5py.SoftLink("/entry/data/data")
        entry["dangling"] = h5py.SoftLink("/entry/nothing")
        entry["elsewhere"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/values")
    return path


def ask(file: Path, endpoint: str, max_bytes: int = 1 << 20, max_read_bytes: int = 128 << 20, **values):
    """(headers, body) of one request, through the same model the service uses; `path` is in the file."""
    arguments = {"file": [b"x"]}
    for name, value in values.items():
        arguments[name] = [item.encode() for item in value] if isinstance(value, list) else [value.encode()]
    request = parse_query(endpoint, arguments).reader_request()
    answer = h5grove_answer(str(file), request, max_bytes=max_bytes, max_read_bytes=max_read_bytes)
    return answer["headers"], base64.b64decode(answer["body"])


def refused(file: Path, endpoint: str, **values) -> tuple[int, str]:
    with pytest.raises(Hdf5Error) as error:
        ask(file, endpoint, **values)
    return error.value.status, str(error.value)


def test_meta_is_h5groves_own_for_a_file_without_external_links(nexus: Path) -> None:
    for path in ("/entry/data", "/entry/data/data", "/entry/title", "/entry/signal", "/entry/dangling"):
        headers, body = ask(nexus, "meta", path=path)
        with h5py.File(nexus) as f:
            expected = create_content(f, path).metadata()
        assert headers == {"Content-Type": "application/json"}
        assert body == encode(expected).content, path


def test_external_links_are_shown_and_never_opened(nexus: Path) -> None:
    children = {child["name"]: child for child in json.loads(ask(nexus, "meta", path="/entry")[1])["children"]}
    # h5grove itself would open other.h5 and call this a dataset.
    assert children["elsewhere"] == {
        "kind": "external_link",
        "name": "elsewhere",
        "target_file": str(nexus.parent.parent / "other.h5"),
        "target_path": "/values",
    }
    assert children["signal"]["kind"] == "dataset" and children["signal"]["shape"] == [10, 32, 32]
    assert children["dangling"] == {"kind": "soft_link", "name": "dangling", "target_path": "/entry/nothing"}
    assert json.loads(ask(nexus, "meta", path="/entry/elsewhere")[1])["kind"] == "external_link"
    assert refused(nexus, "data", path="/entry/elsewhere") == (
        400,
        "/entry/elsewhere is a link that is not followed: it has no attributes, values or paths",
    )
    with h5py.File(nexus) as f:
        assert f["/entry/elsewhere"][()].tolist() == [0, 1, 2]  # a real link: h5py follows it


def test_data_as_json_bin_and_npy_are_the_files_values(nexus: Path) -> None:
    headers, body = ask(nexus, "data", path="/entry/data/data", selection="2, 3:7, ::5")
    assert headers == {"Content-Type": "application/json"}
    assert json.loads(body) == FRAMES[2, 3:7, ::5].tolist()
    headers, body = ask(nexus, "data", path="/entry/signal", selection="-1", format="bin")
    assert headers == {"Content-Type": "application/octet-stream"}
    assert np.frombuffer(body, dtype="<u2").tolist() == FRAMES[-1].ravel().tolist()
    headers, body = ask(nexus, "data", path="/entry/data/data", selection="0:2", format="npy")
    assert headers["Content-Disposition"] == 'attachment; filename="data.npy"'
    assert np.array_equal(np.load(io.BytesIO(body)), FRAMES[0:2])
    assert json.loads(ask(nexus, "data", path="/entry/data/data", selection="1,0:2", flatten="true")[1]) == (
        FRAMES[1, 0:2].ravel().tolist()
    )
    assert json.loads(ask(nexus, "data", path="/entry/title")[1]) == "Strain scan"
    assert json.loads(ask(nexus, "data", path="/entry/empty")[1]) is None


def test_safe_dtype_widens_half_floats_and_counts_the_wider_bytes(nexus: Path) -> None:
    _, body = ask(nexus, "data", path="/entry/half", format="bin", dtype="safe")
    assert np.frombuffer(body, dtype="<f4").tolist() == [0.0, 1.0, 2.0, 3.0]
    assert len(ask(nexus, "data", path="/entry/half", format="bin")[1]) == 8


def test_csv_tiff_and_stats(nexus: Path) -> None:
    headers, body = ask(nexus, "data", path="/entry/data/data", selection="0,0:2,0:3", format="csv")
    assert headers["Content-Type"] == "text/csv"
    assert np.loadtxt(io.StringIO(body.decode()), delimiter=",").tolist() == FRAMES[0, 0:2, 0:3].tolist()
    headers, body = ask(nexus, "data", path="/entry/data/data", selection="4", format="tiff")
    assert headers["Content-Type"] == "image/tiff" and body[:2] in (b"II", b"MM")
    stats = json.loads(ask(nexus, "stats", path="/entry/data/data", selection="1")[1])
    assert (stats["min"], stats["max"]) == (int(FRAMES[1].min()), int(FRAMES[1].max()))


def test_attributes_all_or_by_key(nexus: Path) -> None:
    attrs = json.loads(ask(nexus, "attr", path="/entry/data")[1])
    assert attrs == {"NX_class": "NXdata", "signal": "data", "axes": [".", ".", "x"]}
    assert json.loads(ask(nexus, "attr", path="/entry/data", attr_keys=["signal"])[1]) == {"signal": "data"}
    assert refused(nexus, "attr", path="/entry/data", attr_keys=["units"]) == (
        404,
        "/entry/data has no attribute 'units'",
    )


def test_paths_lists_links_without_following_them(nexus: Path) -> None:
    paths = json.loads(ask(nexus, "paths", path="/entry")[1])
    assert paths == [
        "/entry",
        "/entry/dangling",
        "/entry/data",
        "/entry/data/data",
        "/entry/data/x",
        "/entry/elsewhere",
        "/entry/empty",
        "/entry/half",
        "/entry/signal",
        "/entry/title",
    ]
    assert refused(nexus, "paths", path="/", max_bytes=40) == (
        422,
        "the paths below / take more than one read may return (40 bytes)",
    )


@pytest.mark.parametrize(
    ("endpoint", "values", "status", "message"),
    [
        ("meta", {"path": "/entry/../entry"}, 400, "an in-file path is absolute, such as /entry/data/data, "),
        ("meta", {"path": "/entry//data"}, 400, "an in-file path is absolute, such as /entry/data/data, "),
        ("meta", {"path": "/entry/nothing"}, 404, "/entry/nothing is not a valid path in this file"),
        ("meta", {"path": "/entry/title/inside"}, 404, "/entry/title/inside is not a valid path in this file"),
        ("meta", {"path": "/nothing/inside"}, 404, "no such object /nothing"),
        ("meta", {"path": "/entry/elsewhere/x"}, 400, "/entry/elsewhere leads through an external link"),
        ("data", {"path": "/entry/data"}, 400, "/entry/data is not a dataset"),
        ("paths", {"path": "/entry/title"}, 400, "/entry/title is not a group"),
        ("data", {"path": "/entry/data/data", "selection": "10"}, 400, "index 10 is outside axis 0 of"),
        ("data", {"path": "/entry/data/data", "selection": "0,0,0,0"}, 400, "the selection has 4 members"),
        ("data", {"path": "/entry/title", "format": "bin"}, 400, "/entry/title holds values of variable size"),
        ("data", {"path": "/entry/title", "format": "csv"}, 400, "Unsupported encoding csv for non-numeric content"),
        ("data", {"path": "/entry/empty", "format": "npy"}, 400, "/entry/empty has no values (an empty dataspace)"),
    ],
)
def test_refusals_say_what_is_wrong(nexus: Path, endpoint: str, values: dict, status: int, message: str) -> None:
    got_status, got_message = refused(nexus, endpoint, **values)
    assert (got_status, got_message[: len(message)]) == (status, message)


# -- the byte bounds: checked on the metadata, before anything is read --------------------------------


def test_a_selection_holding_more_than_max_bytes_is_refused(nexus: Path) -> None:
    assert len(ask(nexus, "data", path="/entry/data/data", selection="0:5", max_bytes=5 * 2048)[1]) > 0
    assert refused(nexus, "data", path="/entry/data/data", selection="0:6", max_bytes=5 * 2048) == (
        422,
        "this selection of /entry/data/data holds 0.0117 MiB of values, more than one read may return "
        "(0.00977 MiB): select fewer elements",
    )
    # Half floats sent as float32 count four bytes each.
    assert ask(nexus, "data", path="/entry/half", format="bin", max_bytes=8)
    assert refused(nexus, "data", path="/entry/half", format="bin", dtype="safe", max_bytes=8)[0] == 422


def test_a_selection_is_charged_every_compressed_chunk_it_touches(nexus: Path) -> None:
    """One element from each of the ten (1, 32, 32) gzip chunks reads ten whole chunks."""
    chunk = 32 * 32 * 2
    assert json.loads(ask(nexus, "data", path="/entry/data/data", selection="0:3,0,0", max_read_bytes=3 * chunk)[1])
    assert refused(nexus, "data", path="/entry/data/data", selection="::3,0,0", max_read_bytes=3 * chunk) == (
        422,
        "this selection of /entry/data/data means reading 0.00781 MiB in chunks of shape [1, 32, 32], "
        "more than one read may (0.00586 MiB): select fewer chunks",
    )


def test_a_gzip_bomb_is_refused_before_it_is_decompressed(tmp_path: Path) -> None:
    path = tmp_path / "bomb.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("zeros", shape=(50_000_000,), dtype="f4", chunks=(50_000_000,), compression="gzip")
    assert refused(path, "data", path="/zeros", selection="0:10") == (
        422,
        "this selection of /zeros means reading 191 MiB in chunks of shape [50000000], more than one read may "
        "(128 MiB): select fewer chunks",
    )
    assert refused(path, "stats", path="/zeros", selection="0:10")[0] == 422


def test_attributes_are_bounded_by_bytes_before_they_are_read(tmp_path: Path) -> None:
    path = tmp_path / "attrs.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f.attrs["pixels"] = np.zeros(200_000, dtype="f8")  # 1.5 MiB
        f.attrs["name"] = "detector"
    assert json.loads(ask(path, "attr", attr_keys=["name"])[1]) == {"name": "detector"}
    assert refused(path, "attr") == (
        422,
        "the attributes asked for hold 1.53 MiB, more than one read may return (1 MiB): ask for fewer with attr_keys",
    )
    assert json.loads(ask(path, "meta")[1])["attributes"][1] == {
        "name": "pixels",
        "shape": [200_000],
        "type": {"class": 1, "dtype": "<f8", "order": 0, "size": 8},
    }


# -- through the reader: the location's rules first -------------------------------------------------


def test_the_reader_answers_h5grove_requests_inside_the_location_only(nexus: Path, tmp_path: Path) -> None:
    request = {**parse_query("meta", {"file": [b"x"], "path": [b"/entry/title"]}).reader_request(), "op": "h5grove"}
    out = io.BytesIO()
    answer({**request, "root": str(nexus.parent), "names": ["scan.nxs"]}, out)
    assert json.loads(base64.b64decode(json.loads(out.getvalue())["body"]))["name"] == "title"
    (nexus.parent / "out.h5").symlink_to(tmp_path / "other.h5")
    with pytest.raises(Exception) as error:
        answer({**request, "root": str(nexus.parent), "names": ["out.h5"]}, io.BytesIO())
    assert error_document(error.value) == {"error": {"status": 403, "message": "the path leads outside its location"}}
    (nexus.parent / "notes.txt").write_text("not HDF5")
    with pytest.raises(Exception) as error:
        answer({**request, "root": str(nexus.parent), "names": ["notes.txt"]}, io.BytesIO())
    assert error_document(error.value) == {"error": {"status": 400, "message": "not an HDF5 file"}}
