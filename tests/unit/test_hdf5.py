"""describe_file / preview_dataset on real HDF5 files written with h5py in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from daas_services.data.as_user import READER
from daas_services.data.hdf5 import Hdf5Error, describe_file, preview_dataset

DETECTOR = (np.arange(5 * 64 * 64) + 40000).astype(np.uint16).reshape(5, 64, 64)


@pytest.fixture
def nexus(tmp_path: Path) -> Path:
    """A small NeXus-like scan; /entry/external points at a real file in another directory."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with h5py.File(elsewhere / "detector.h5", "w") as other:
        other["entry/data"] = np.arange(3)
    data = tmp_path / "data"
    data.mkdir()
    path = data / "scan.nxs"
    with h5py.File(path, "w") as f:
        f.attrs["NX_class"] = np.bytes_(b"NXroot")
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data"
        f.create_group("entry/instrument").attrs["NX_class"] = np.bytes_(b"NXinstrument")
        detector = f.create_group("entry/instrument/detector")
        detector.attrs.update(
            {
                "NX_class": "NXdetector",
                "pixel_ids": np.arange(1000, dtype=np.int32),
                "temperature": np.array([1.5, np.nan, np.inf, -np.inf]),
                "serial": np.bytes_(b"\xff-E42"),
                "gain": np.float32(2.0),
                "count": np.int64(3),
                "enabled": np.bool_(True),
                "matrix": np.arange(6, dtype=np.int8).reshape(2, 3),
                "names": np.array([b"x", b"y"]),
                "offset": np.array((1, 2.5), dtype=[("a", "<i4"), ("b", "<f8")]),
                "phase": np.complex128(1 + 2j),
            }
        )
        frames = detector.create_dataset("data", data=DETECTOR)
        frames.attrs["units"] = np.bytes_(b"counts")
        frames.attrs["signal"] = np.int32(1)
        plot = f.create_group("entry/data")
        plot.attrs["NX_class"] = "NXdata"
        plot.attrs["signal"] = "data"
        plot["data"] = h5py.SoftLink("/entry/instrument/detector/data")
        entry["external"] = h5py.ExternalLink("../elsewhere/detector.h5", "/entry/data")
        entry["missing_external"] = h5py.ExternalLink(str(tmp_path / "nowhere" / "gone.h5"), "/entry/data")
        sample = f.create_group("entry/sample")
        sample.attrs["NX_class"] = "NXsample"
        sample["name"] = "LaB6"
        sample["temperature"] = np.array([290.0, np.nan, 291.5, np.inf])
        sample["temperature"].attrs["units"] = "K"
        sample["detector_view"] = detector  # a second hard link to the detector group
        sample["back_to_entry"] = entry  # a hard-link cycle
    return path


def _detector_node() -> dict:
    return {
        "name": "detector",
        "path": "/entry/instrument/detector",
        "type": "group",
        "attrs": {
            "NX_class": "NXdetector",
            "count": 3,
            "enabled": True,
            "gain": 2.0,
            "matrix": [[0, 1, 2], [3, 4, 5]],
            "names": ["x", "y"],
            "offset": {"a": 1, "b": 2.5},
            "phase": {"real": 1.0, "imag": 2.0},
            "pixel_ids": {"shape": [1000], "dtype": "int32"},
            "serial": "\ufffd-E42",
            "temperature": [1.5, "nan", "inf", "-inf"],
        },
        "nx_class": "NXdetector",
        "children": [
            {
                "name": "data",
                "path": "/entry/instrument/detector/data",
                "type": "dataset",
                "shape": [5, 64, 64],
                "dtype": "uint16",
                "attrs": {"signal": 1, "units": "counts"},
                "nx_class": None,
            }
        ],
    }


def _expected_tree(tmp_path: Path) -> dict:
    return {
        "name": "",
        "path": "/",
        "type": "group",
        "attrs": {"NX_class": "NXroot"},
        "nx_class": "NXroot",
        "truncated": False,
        "children": [
            {
                "name": "entry",
                "path": "/entry",
                "type": "group",
                "attrs": {"NX_class": "NXentry", "default": "data"},
                "nx_class": "NXentry",
                "children": [
                    {
                        "name": "data",
                        "path": "/entry/data",
                        "type": "group",
                        "attrs": {"NX_class": "NXdata", "signal": "data"},
                        "nx_class": "NXdata",
                        "children": [
                            {
                                "name": "data",
                                "path": "/entry/data/data",
                                "type": "soft_link",
                                "target": "/entry/instrument/detector/data",
                            }
                        ],
                    },
                    {
                        "name": "external",
                        "path": "/entry/external",
                        "type": "external_link",
                        "file": "../elsewhere/detector.h5",
                        "target": "/entry/data",
                    },
                    {
                        "name": "instrument",
                        "path": "/entry/instrument",
                        "type": "group",
                        "attrs": {"NX_class": "NXinstrument"},
                        "nx_class": "NXinstrument",
                        "children": [_detector_node()],
                    },
                    {
                        "name": "missing_external",
                        "path": "/entry/missing_external",
                        "type": "external_link",
                        "file": str(tmp_path / "nowhere" / "gone.h5"),
                        "target": "/entry/data",
                    },
                    {
                        "name": "sample",
                        "path": "/entry/sample",
                        "type": "group",
                        "attrs": {"NX_class": "NXsample"},
                        "nx_class": "NXsample",
                        "children": [
                            {
                                "name": "back_to_entry",
                                "path": "/entry/sample/back_to_entry",
                                "type": "group",
                                "seen_at": "/entry",
                            },
                            {
                                "name": "detector_view",
                                "path": "/entry/sample/detector_view",
                                "type": "group",
                                "seen_at": "/entry/instrument/detector",
                            },
                            {
                                "name": "name",
                                "path": "/entry/sample/name",
                                "type": "dataset",
                                "shape": [],
                                "dtype": "string",
                                "attrs": {},
                                "nx_class": None,
                            },
                            {
                                "name": "temperature",
                                "path": "/entry/sample/temperature",
                                "type": "dataset",
                                "shape": [4],
                                "dtype": "float64",
                                "attrs": {"units": "K"},
                                "nx_class": None,
                            },
                        ],
                    },
                ],
            }
        ],
    }


def _message(error: pytest.ExceptionInfo[Hdf5Error]) -> str:
    return str(error.value)


# describe_file


def test_describe_exact_tree(nexus, tmp_path):
    assert describe_file(str(nexus)) == _expected_tree(tmp_path)


def test_external_links_are_real_but_never_opened(nexus, tmp_path):
    # h5py itself would follow /entry/external to the other directory, and fail on the missing one.
    with h5py.File(nexus, "r") as f:
        assert f["/entry/external"][()].tolist() == [0, 1, 2]
        with pytest.raises(KeyError):
            f["/entry/missing_external"]
    tree = describe_file(str(nexus))
    entry = tree["children"][0]
    assert [child["type"] for child in entry["children"]] == [
        "group",
        "external_link",
        "group",
        "external_link",
        "group",
    ]
    assert "children" not in entry["children"][1]
    assert "children" not in entry["children"][3]


def test_describe_truncates_at_max_nodes(nexus):
    assert describe_file(str(nexus), max_nodes=3) == {
        "name": "",
        "path": "/",
        "type": "group",
        "attrs": {"NX_class": "NXroot"},
        "nx_class": "NXroot",
        "truncated": True,
        "children": [
            {
                "name": "entry",
                "path": "/entry",
                "type": "group",
                "attrs": {"NX_class": "NXentry", "default": "data"},
                "nx_class": "NXentry",
                "children": [
                    {
                        "name": "data",
                        "path": "/entry/data",
                        "type": "group",
                        "attrs": {"NX_class": "NXdata", "signal": "data"},
                        "nx_class": "NXdata",
                        "children": [],
                    }
                ],
            }
        ],
    }


def test_describe_max_nodes_one_is_the_root_alone(nexus):
    tree = describe_file(str(nexus), max_nodes=1)
    assert tree["children"] == []
    assert tree["truncated"] is True


def test_describe_max_nodes_exactly_enough_is_not_truncated(nexus, tmp_path):
    # 1 root + 1 entry + 5 entry children + 1 soft link + 1 detector + 4 sample children + 1 dataset
    assert describe_file(str(nexus), max_nodes=14) == _expected_tree(tmp_path)
    assert describe_file(str(nexus), max_nodes=13)["truncated"] is True


def test_describe_truncates_at_max_depth(nexus, tmp_path):
    tree = describe_file(str(nexus), max_depth=2)
    assert tree["truncated"] is True
    entry = tree["children"][0]
    assert [child["path"] for child in entry["children"]] == [
        "/entry/data",
        "/entry/external",
        "/entry/instrument",
        "/entry/missing_external",
        "/entry/sample",
    ]
    assert [child.get("children") for child in entry["children"]] == [[], None, [], None, []]
    assert describe_file(str(nexus), max_depth=0)["children"] == []
    # The deepest node (/entry/instrument/detector/data) is at depth 4.
    assert describe_file(str(nexus), max_depth=4) == _expected_tree(tmp_path)
    assert describe_file(str(nexus), max_depth=3)["truncated"] is True


def test_describe_truncates_attribute_strings(tmp_path):
    path = tmp_path / "long.h5"
    with h5py.File(path, "w") as f:
        f.attrs["NX_class"] = "NXroot"
        f.attrs["title"] = np.bytes_(b"abcdef")
        f.attrs["short"] = "abc"
        f.attrs["labels"] = np.array(["abcd", "ab"], dtype=h5py.string_dtype())
    tree = describe_file(str(path), max_attr_chars=3)
    assert tree == {
        "name": "",
        "path": "/",
        "type": "group",
        "attrs": {"NX_class": "NXr…", "labels": ["abc…", "ab"], "short": "abc", "title": "abc…"},
        "nx_class": "NXr…",
        "truncated": False,
        "children": [],
    }


def test_describe_attribute_array_size_limit(tmp_path):
    path = tmp_path / "arrays.h5"
    with h5py.File(path, "w") as f:
        f.attrs["hundred"] = np.arange(100, dtype=np.int16).reshape(10, 10)
        f.attrs["hundred_one"] = np.arange(101, dtype=np.float32)
        f.attrs["strings"] = np.array([b"s"] * 101)
        f.attrs["empty"] = h5py.Empty("f8")
    attrs = describe_file(str(path))["attrs"]
    assert attrs == {
        "empty": None,
        "hundred": np.arange(100).reshape(10, 10).tolist(),
        "hundred_one": {"shape": [101], "dtype": "float32"},
        "strings": {"shape": [101], "dtype": "|S1"},
    }


def test_describe_other_object_kinds(tmp_path):
    path = tmp_path / "kinds.h5"
    with h5py.File(path, "w") as f:
        f["pixel_t"] = np.dtype([("x", "<u2"), ("y", "<u2")])
        f["pixel_t"].attrs["NX_class"] = "NXnote"
        f.create_dataset("nothing", data=h5py.Empty("f8"))
        f.create_dataset("ragged", shape=(2,), dtype=h5py.vlen_dtype(np.int32))
        f["dangling"] = h5py.SoftLink("/no/where")
    assert describe_file(str(path))["children"] == [
        {"name": "dangling", "path": "/dangling", "type": "soft_link", "target": "/no/where"},
        {
            "name": "nothing",
            "path": "/nothing",
            "type": "dataset",
            "shape": None,
            "dtype": "float64",
            "attrs": {},
            "nx_class": None,
        },
        {
            "name": "pixel_t",
            "path": "/pixel_t",
            "type": "datatype",
            "dtype": "[('x', '<u2'), ('y', '<u2')]",
            "attrs": {"NX_class": "NXnote"},
            "nx_class": "NXnote",
        },
        {
            "name": "ragged",
            "path": "/ragged",
            "type": "dataset",
            "shape": [2],
            "dtype": "vlen[int32]",
            "attrs": {},
            "nx_class": None,
        },
    ]


def test_describe_sorts_by_name_whatever_the_file_order(tmp_path):
    path = tmp_path / "ordered.h5"
    with h5py.File(path, "w", track_order=True) as f:
        for name in ("zeta", "Alpha", "beta"):
            f.attrs[name] = 0
            f[name] = 0
    with h5py.File(path, "r") as f:  # the file keeps creation order
        assert (list(f.attrs), list(f)) == (["zeta", "Alpha", "beta"], ["zeta", "Alpha", "beta"])
    tree = describe_file(str(path))
    assert list(tree["attrs"]) == ["Alpha", "beta", "zeta"]
    assert [child["name"] for child in tree["children"]] == ["Alpha", "beta", "zeta"]


def test_describe_does_not_read_large_attributes(nexus, monkeypatch):
    read = []
    original = h5py.AttributeManager.__getitem__

    def recording(self, name):
        read.append(name)
        return original(self, name)

    monkeypatch.setattr(h5py.AttributeManager, "__getitem__", recording)
    describe_file(str(nexus))
    assert "pixel_ids" not in read
    assert "temperature" in read


def test_describe_hard_link_to_root(tmp_path):
    path = tmp_path / "loop.h5"
    with h5py.File(path, "w") as f:
        f["a/up"] = f["/"]
    assert describe_file(str(path))["children"] == [
        {
            "name": "a",
            "path": "/a",
            "type": "group",
            "attrs": {},
            "nx_class": None,
            "children": [{"name": "up", "path": "/a/up", "type": "group", "seen_at": "/"}],
        }
    ]


def test_describe_empty_file_is_not_truncated(tmp_path):
    path = tmp_path / "empty.h5"
    h5py.File(path, "w").close()
    assert describe_file(str(path), max_nodes=1, max_depth=0) == {
        "name": "",
        "path": "/",
        "type": "group",
        "attrs": {},
        "nx_class": None,
        "truncated": False,
        "children": [],
    }


# Files that cannot be opened


@pytest.mark.parametrize("content", [b"", b"not HDF5 at all\n" * 100, b"\x89HDF\r\n\x1a"])
def test_not_hdf5(tmp_path, content):
    path = tmp_path / "notes.h5"
    path.write_bytes(content)
    with pytest.raises(Hdf5Error) as error:
        describe_file(str(path))
    assert _message(error) == "not an HDF5 file"
    with pytest.raises(Hdf5Error) as error:
        preview_dataset(str(path), "/entry")
    assert _message(error) == "not an HDF5 file"


def test_os_errors_propagate(tmp_path):
    with pytest.raises(FileNotFoundError):
        describe_file(str(tmp_path / "missing.h5"))
    with pytest.raises(IsADirectoryError):
        describe_file(str(tmp_path))


def test_permission_error_is_not_not_hdf5(tmp_path, monkeypatch):
    """What h5py raises for an unreadable file (see the real check below, which root cannot run)."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Unable to synchronously open file (Permission denied)")

    monkeypatch.setattr(h5py, "File", refuse)
    with pytest.raises(PermissionError):
        describe_file(str(tmp_path / "secret.h5"))
    with pytest.raises(PermissionError):
        preview_dataset(str(tmp_path / "secret.h5"), "/x")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_raises_permission_error(nexus):
    nexus.chmod(0)
    try:
        with pytest.raises(PermissionError):
            describe_file(str(nexus))
    finally:
        nexus.chmod(0o644)


# preview_dataset


def test_preview_3d(nexus):
    assert preview_dataset(str(nexus), "/entry/instrument/detector/data") == {
        "path": "/entry/instrument/detector/data",
        "shape": [5, 64, 64],
        "dtype": "uint16",
        "selection": [[0, 1], [0, 31], [0, 32]],
        "data": DETECTOR[0:1, 0:31, 0:32].tolist(),
    }


def test_preview_3d_small_budget(nexus):
    preview = preview_dataset(str(nexus), "/entry/instrument/detector/data", max_elements=10)
    assert preview["selection"] == [[0, 1], [0, 3], [0, 3]]
    assert preview["data"] == [[[40000, 40001, 40002], [40064, 40065, 40066], [40128, 40129, 40130]]]


def test_preview_reads_only_the_selection(nexus, monkeypatch):
    keys = []
    original = h5py.Dataset.__getitem__

    def recording(self, key, *args, **kwargs):
        keys.append(key)
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", recording)
    preview_dataset(str(nexus), "/entry/instrument/detector/data")
    assert keys == [(slice(0, 1), slice(0, 31), slice(0, 32))]


def test_preview_through_soft_link(nexus):
    preview = preview_dataset(str(nexus), "/entry/data/data", max_elements=4)
    assert preview == {
        "path": "/entry/data/data",
        "shape": [5, 64, 64],
        "dtype": "uint16",
        "selection": [[0, 1], [0, 2], [0, 2]],
        "data": [[[40000, 40001], [40064, 40065]]],
    }


def test_preview_1d(nexus):
    assert preview_dataset(str(nexus), "/entry/sample/temperature") == {
        "path": "/entry/sample/temperature",
        "shape": [4],
        "dtype": "float64",
        "selection": [[0, 4]],
        "data": [290.0, "nan", 291.5, "inf"],
    }
    preview = preview_dataset(str(nexus), "/entry/sample/temperature", max_elements=2)
    assert preview["selection"] == [[0, 2]]
    assert preview["data"] == [290.0, "nan"]


def test_preview_scalar_string(nexus):
    assert preview_dataset(str(nexus), "/entry/sample/name") == {
        "path": "/entry/sample/name",
        "shape": [],
        "dtype": "string",
        "selection": [],
        "data": "LaB6",
    }


@pytest.fixture
def odd(tmp_path: Path) -> Path:
    """Datasets of unusual shapes and types, and tricky links."""
    (tmp_path / "other").mkdir()
    with h5py.File(tmp_path / "other" / "source.h5", "w") as source:
        source["data"] = np.arange(10)
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        f["wide"] = np.arange(30000, dtype=np.int32).reshape(3, 10000)
        f["tall"] = np.arange(30000, dtype=np.int32).reshape(10000, 3)
        f["empty"] = np.zeros((0, 3))
        f.create_dataset("nothing", data=h5py.Empty("f8"))
        f["scalar"] = np.float32(2.5)
        f["fixed"] = np.array([b"ab", b"\xffc"])
        f.create_dataset("words", data=["alpha", "béta"], dtype=h5py.string_dtype())
        f["table"] = np.array(
            [(1, 2.5, b"a"), (2, np.nan, b"b")], dtype=[("id", "<i4"), ("value", "<f8"), ("label", "S1")]
        )
        f["pixel_t"] = np.dtype("<u2")
        f["numbers"] = np.arange(5)
        f["chain1"] = h5py.SoftLink("/chain2")
        f["chain2"] = h5py.SoftLink("/numbers")
        f["grp/values"] = np.arange(3)
        f["grp/rel"] = h5py.SoftLink("values")
        f["grp/dot"] = h5py.SoftLink("./values")
        f["to_grp"] = h5py.SoftLink("/grp")
        f["loop_a"] = h5py.SoftLink("/loop_b")
        f["loop_b"] = h5py.SoftLink("/loop_a")
        f["dangling"] = h5py.SoftLink("/no/where")
        f["ext"] = h5py.ExternalLink("other/source.h5", "/")
        f["via_ext"] = h5py.SoftLink("/ext/data")
        layout = h5py.VirtualLayout(shape=(10,), dtype="i8")
        layout[:] = h5py.VirtualSource(str(tmp_path / "other" / "source.h5"), "data", shape=(10,))
        f.create_virtual_dataset("virtual", layout, fillvalue=-1)
        np.arange(4, dtype=np.uint8).tofile(tmp_path / "raw.bin")
        f.create_dataset("raw", shape=(4,), dtype="u1", external=[(str(tmp_path / "raw.bin"), 0, 4)])
        packed = f.create_dataset(
            "packed", shape=(4,), dtype="u1", chunks=(4,), compression=65000, allow_unknown_filter=True
        )
        packed.id.write_direct_chunk((0,), b"\x00\x01\x02\x03")
        ragged = f.create_dataset("ragged", shape=(2,), dtype=h5py.vlen_dtype(np.int32))
        ragged[0] = np.arange(3, dtype=np.int32)
        ragged[1] = np.arange(101, dtype=np.int32)
        for hop in range(17):  # hop_0 -> hop_1 -> ... -> hop_16 -> numbers
            f[f"hop_{hop}"] = h5py.SoftLink(f"/hop_{hop + 1}" if hop < 16 else "/numbers")
    return path


@pytest.mark.parametrize(
    "dataset, selection",
    [
        ("/wide", [[0, 3], [0, 333]]),
        ("/tall", [[0, 333], [0, 3]]),
        ("/empty", [[0, 0], [0, 3]]),
    ],
)
def test_preview_2d_selection(odd, dataset, selection):
    preview = preview_dataset(str(odd), dataset)
    assert preview["selection"] == selection
    full = np.arange(30000).reshape(3, 10000) if dataset == "/wide" else np.arange(30000).reshape(10000, 3)
    expected = [] if dataset == "/empty" else full[: selection[0][1], : selection[1][1]].tolist()
    assert preview["data"] == expected


def test_preview_one_element_budget(odd):
    assert preview_dataset(str(odd), "/wide", max_elements=1)["data"] == [[0]]


def test_preview_rejects_no_budget(odd):
    with pytest.raises(ValueError, match=r"^max_elements must be at least 1$"):
        preview_dataset(str(odd), "/wide", max_elements=0)


@pytest.mark.parametrize(
    "dataset, shape, dtype, data",
    [
        ("/nothing", None, "float64", None),
        ("/scalar", [], "float32", 2.5),
    ],
)
def test_preview_without_elements(odd, dataset, shape, dtype, data):
    assert preview_dataset(str(odd), dataset) == {
        "path": dataset,
        "shape": shape,
        "dtype": dtype,
        "selection": [],
        "data": data,
    }


def test_preview_strings_and_compounds(odd):
    assert preview_dataset(str(odd), "/fixed")["data"] == ["ab", "\ufffdc"]
    words = preview_dataset(str(odd), "/words", max_chars=4)
    assert (words["dtype"], words["data"]) == ("string", ["alph…", "béta"])
    table = preview_dataset(str(odd), "/table")
    assert table["dtype"] == "[('id', '<i4'), ('value', '<f8'), ('label', 'S1')]"
    assert table["data"] == [{"id": 1, "value": 2.5, "label": "a"}, {"id": 2, "value": "nan", "label": "b"}]


def test_preview_summarises_large_elements(odd):
    preview = preview_dataset(str(odd), "/ragged")
    assert (preview["dtype"], preview["data"]) == ("vlen[int32]", [[0, 1, 2], {"shape": [101], "dtype": "int32"}])


@pytest.mark.parametrize(
    "dataset, data",
    [
        ("/hop_1", [0, 1, 2, 3, 4]),  # 16 soft links: HDF5's own limit
        ("/chain1", [0, 1, 2, 3, 4]),
        ("/grp/rel", [0, 1, 2]),
        ("/grp/dot", [0, 1, 2]),
        ("/to_grp/values", [0, 1, 2]),
        ("/to_grp/rel", [0, 1, 2]),
    ],
)
def test_preview_follows_soft_links(odd, dataset, data):
    preview = preview_dataset(str(odd), dataset)
    assert (preview["path"], preview["data"]) == (dataset, data)


@pytest.mark.parametrize(
    "dataset",
    [
        "entry/data",
        "",
        "/entry/../entry",
        "/entry/./sample",
        "/entry//sample",
        "/entry/",
        "//entry",
        "/..",
        "/entry\x00/name",
    ],
)
def test_preview_rejects_bad_paths(nexus, dataset):
    with pytest.raises(Hdf5Error) as error:
        preview_dataset(str(nexus), dataset)
    assert _message(error) == "an in-file path is absolute, such as /entry/data/data, with no '.', '..' or empty names"


@pytest.mark.parametrize(
    "dataset, message",
    [
        ("/entry/nothing", "no such object /entry/nothing"),
        ("/nothing/at/all", "no such object /nothing/at/all"),
        ("/entry/sample/name/inside", "no such object /entry/sample/name/inside"),
        ("/entry/instrument", "/entry/instrument is a group, not a dataset"),
        ("/", "/ is a group, not a dataset"),
        ("/entry/sample/back_to_entry", "/entry/sample/back_to_entry is a group, not a dataset"),
        ("/entry/external", "/entry/external leads through an external link, which is not followed"),
        ("/entry/external/x", "/entry/external/x leads through an external link, which is not followed"),
        ("/entry/missing_external", "/entry/missing_external leads through an external link, which is not followed"),
    ],
)
def test_preview_refuses(nexus, dataset, message):
    with pytest.raises(Hdf5Error) as error:
        preview_dataset(str(nexus), dataset)
    assert _message(error) == message


@pytest.mark.parametrize(
    "dataset, message",
    [
        ("/via_ext", "/via_ext leads through an external link, which is not followed"),
        ("/ext/data", "/ext/data leads through an external link, which is not followed"),
        ("/loop_a", "/loop_a leads through more than 16 soft links"),
        ("/hop_0", "/hop_0 leads through more than 16 soft links"),
        ("/dangling", "no such object /dangling"),
        ("/pixel_t", "/pixel_t is a named datatype, not a dataset"),
        ("/virtual", "/virtual keeps its data in other files (virtual or external storage), which are not read"),
        ("/raw", "/raw keeps its data in other files (virtual or external storage), which are not read"),
        ("/packed", "/packed is compressed with HDF5 filter 65000, which is not available here"),
    ],
)
def test_preview_refuses_odd(odd, dataset, message):
    with pytest.raises(Hdf5Error) as error:
        preview_dataset(str(odd), dataset)
    assert _message(error) == message


def test_odd_links_are_real(odd):
    """h5py itself follows what preview refuses, so the refusals above are not just missing data."""
    with h5py.File(odd, "r") as f:
        assert f["/via_ext"][()].tolist() == list(range(10))
        assert f["/virtual"][()].tolist() == list(range(10))
        assert f["/raw"][()].tolist() == [0, 1, 2, 3]


# -- what a preview may cost, in bytes ---------------------------------------------------------


def gzip_bomb(path: Path, elements: int, dataset: str = "zeros") -> Path:
    """`elements` float32 zeros in ONE gzip chunk: a file of kilobytes that decompresses to 4 x elements bytes."""
    with h5py.File(path, "a") as f:
        f.create_dataset(dataset, shape=(elements,), dtype="f4", chunks=(elements,), compression="gzip", fillvalue=0)
        f[dataset][:] = 0
    return path


def test_a_preview_that_would_decompress_a_huge_chunk_is_refused_before_reading(tmp_path):
    bomb = gzip_bomb(tmp_path / "bomb.h5", 50_000_000)  # 191 MiB in one chunk
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(Hdf5Error) as error:
        preview_dataset(str(bomb), "/zeros", max_elements=10)
    assert error.value.status == 422
    assert _message(error) == (
        "previewing /zeros means reading a chunk of 191 MiB (chunk shape [50000000]), more than a preview may (128 MiB)"
    )
    assert preview_dataset(str(bomb), "/zeros", max_elements=10, max_read_bytes=200 << 20)["data"] == [0.0] * 10


# Runs a command and prints its peak RSS (KiB) after its output. The reader is started from this small
# process, not from pytest: a child's peak counts the memory of the process it was forked from.
PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def test_the_refusal_keeps_the_readers_memory_small(tmp_path):
    """The reader process itself, as the service runs it: its peak RSS (from the kernel) stays far below the chunk."""
    gzip_bomb(tmp_path / "bomb.h5", 50_000_000)
    request = {"op": "hdf5", "root": str(tmp_path), "names": ["bomb.h5"], "dataset": "/zeros"}
    measured = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *READER], input=json.dumps(request).encode(), capture_output=True, timeout=60
    )
    answer, peak = measured.stdout.decode().splitlines()
    assert json.loads(answer)["error"]["status"] == 422
    # About 40 MiB with h5py and numpy loaded; 230 MiB when the chunk was decompressed.
    assert int(peak) < 100 << 10, peak


def test_a_selection_touching_too_many_chunks_shrinks_to_the_first(tmp_path):
    path = tmp_path / "chunks.h5"
    values = np.arange(100 * 100, dtype="f8").reshape(100, 100)
    with h5py.File(path, "w") as f:
        f.create_dataset("rows", data=values, chunks=(10, 100), compression="gzip")
    preview = preview_dataset(str(path), "/rows", max_read_bytes=10 * 100 * 8)  # one chunk
    assert preview["selection"] == [[0, 10], [0, 32]]  # 31 x 32 would touch four chunks
    assert preview["data"] == values[:10, :32].tolist()
    assert preview_dataset(str(path), "/rows")["selection"] == [[0, 31], [0, 32]]  # 4 chunks, within the default


def test_large_elements_shrink_the_selection_and_one_too_large_is_refused(tmp_path):
    path = tmp_path / "arrays.h5"
    spectra = np.arange(50 * 100, dtype="f8").reshape(50, 100)
    with h5py.File(path, "w") as f:
        f.create_dataset("spectra", shape=(50,), dtype=np.dtype(("f8", (100,))))[...] = spectra
        f.create_dataset("image", shape=(), dtype=np.dtype(("f8", (512, 512))))  # one scalar of 2 MiB
        f.create_dataset("frames", shape=(3,), dtype=np.dtype(("u1", (2048, 1024))))
    preview = preview_dataset(str(path), "/spectra", max_bytes=4000)  # 800 bytes an element: 5 elements
    assert preview["selection"] == [[0, 5]] and preview["data"] == spectra[:5].tolist()
    for dataset, size in (("/image", "2 MiB"), ("/frames", "2 MiB")):
        with pytest.raises(Hdf5Error) as error:
            preview_dataset(str(path), dataset)
        assert error.value.status == 422
        assert _message(error) == f"one element of {dataset} takes {size}, more than a preview may hold (1 MiB)"


def test_large_attributes_are_summarised_by_bytes_too(tmp_path):
    path = tmp_path / "attrs.h5"
    with h5py.File(path, "w", libver="latest") as f:  # the latest format stores attributes over 64 KiB
        f.attrs["notes"] = np.bytes_(b"x" * 70_000)  # one fixed-length string of 70,000 bytes
        f.attrs["short"] = np.bytes_(b"x" * 70)
    attrs = describe_file(str(path))["attrs"]
    assert attrs == {"notes": {"shape": [], "dtype": "|S70000"}, "short": "x" * 70}
