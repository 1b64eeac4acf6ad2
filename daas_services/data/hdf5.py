"""Describe HDF5 / NeXus files for the data-browsing service, as JSON-ready dictionaries.

This runs in a per-request process that already has the requesting user's identity, on a path
the caller has checked lies inside that user's data location. What is left to guard against is
the file itself: links are inspected without being followed, external links (which may point
anywhere) are never opened, datasets whose data lives in other files are not read, and the
output is bounded however large or deep the file is. What a read costs is bounded in bytes
before reading, from the file's metadata: a tiny file can hold a compressed chunk of gigabytes
that HDF5 must decompress whole to give back ten elements of it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import h5py
import numpy as np

# Attribute arrays longer than this, or larger in bytes, are summarised ({"shape", "dtype"}) and not read.
MAX_ATTR_ELEMENTS = 100
MAX_ATTR_BYTES = 64 << 10
# A preview's values in memory (elements x item size): the selection shrinks to fit.
MAX_PREVIEW_BYTES = 1 << 20
# What HDF5 may read and decompress for one preview: each compressed chunk it touches, whole.
MAX_READ_BYTES = 128 << 20
# HDF5's own default limit on soft links followed while resolving one path.
MAX_SOFT_LINKS = 16


class Hdf5Error(ValueError):
    """A file or in-file path that cannot be described; the message is safe to show the user.

    `status` is the HTTP answer: 400 for a request that names nothing previewable, 404 for an
    in-file path with nothing at its end, 422 for an object that exists but costs more to read
    than a reader may spend, or that HDF5 cannot read.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@contextmanager
def open_file(path: str) -> Iterator[h5py.File]:
    """Open read-only; only "not HDF5" becomes Hdf5Error, OS errors (permission, missing) propagate."""
    try:
        file = h5py.File(path, "r", locking=False)
    except OSError as error:
        # h5py raises errno-carrying subclasses (PermissionError, FileNotFoundError, ...) for OS
        # failures and a plain OSError without errno when the file is not HDF5; that message names the file.
        if error.errno is not None:
            raise
        raise Hdf5Error("not an HDF5 file") from None
    with file:
        try:
            yield file
        except (OSError, RuntimeError) as error:
            # The library's own failures while reading (h5py gives them no errno), among them an
            # allocation that the reader's memory limit refused.
            if isinstance(error, OSError) and error.errno is not None:
                raise
            raise Hdf5Error(
                f"HDF5 could not read this file ({error}): reading it needs more memory than a reader may use, "
                "or the file is damaged",
                422,
            ) from None


def _join(parent: str, name: str) -> str:
    return f"/{name}" if parent == "/" else f"{parent}/{name}"


def _shape(shape: tuple[int, ...] | None) -> list[int] | None:
    """None for a null dataspace (h5py.Empty), which has no shape at all."""
    return None if shape is None else list(shape)


def _dtype_name(dtype: np.dtype) -> str:
    """numpy's name, except for the types numpy only knows as 'object'."""
    string = h5py.check_string_dtype(dtype)
    if string is not None and string.length is None:
        return "string"
    if h5py.check_ref_dtype(dtype) is not None:
        return "reference"
    base = h5py.check_vlen_dtype(dtype)
    if base is not None:
        return f"vlen[{_dtype_name(base)}]"
    return str(dtype)


def _text(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars] + "…"


def _json_value(value: Any, max_chars: int) -> Any:
    """JSON has no bytes, numpy types, NaN or infinities, and the browser wants no huge values."""
    if value is None or isinstance(value, h5py.Empty):
        return None
    if isinstance(value, bytes):
        return _text(value.decode("utf-8", errors="replace"), max_chars)
    if isinstance(value, str):
        return _text(value, max_chars)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else str(number)
    if isinstance(value, (complex, np.complexfloating)):
        return {"real": _json_value(value.real, max_chars), "imag": _json_value(value.imag, max_chars)}
    if isinstance(value, np.void):
        if value.dtype.names is None:  # opaque
            return _text(value.tobytes().hex(), max_chars)
        return {name: _json_value(value[name], max_chars) for name in value.dtype.names}
    if isinstance(value, np.ndarray):
        if value.size > MAX_ATTR_ELEMENTS:
            return _array_summary(value.shape, value.dtype)
        return _json_value(value[()], max_chars) if value.ndim == 0 else _nested(value, max_chars)
    return _text(str(value), max_chars)  # object references and the like: a label, never dereferenced


def _nested(array: np.ndarray, max_chars: int) -> list[Any]:
    """Nested lists for an array of at least one dimension, each element made JSON-safe."""
    if array.ndim == 1:
        return [_json_value(item, max_chars) for item in array]
    return [_nested(row, max_chars) for row in array]


def _array_summary(shape: tuple[int, ...], dtype: np.dtype) -> dict[str, Any]:
    return {"shape": list(shape), "dtype": _dtype_name(dtype)}


def _attrs(obj: h5py.HLObject, max_chars: int) -> dict[str, Any]:
    """All attributes by name; a large array attribute is summarised from its metadata, not read."""
    result: dict[str, Any] = {}
    for name in sorted(obj.attrs):
        attr = obj.attrs.get_id(name)
        elements = 0 if attr.shape is None else math.prod(attr.shape)
        if elements > MAX_ATTR_ELEMENTS or elements * attr.dtype.itemsize > MAX_ATTR_BYTES:
            result[name] = _array_summary(attr.shape, attr.dtype)
        else:
            result[name] = _json_value(obj.attrs[name], max_chars)
    return result


def _object_node(obj: h5py.HLObject, kind: str, name: str, path: str, max_chars: int) -> dict[str, Any]:
    attrs = _attrs(obj, max_chars)
    nx_class = attrs.get("NX_class")
    return {
        "name": name,
        "path": path,
        "type": kind,
        "attrs": attrs,
        "nx_class": nx_class if isinstance(nx_class, str) else None,
    }


def _identity(group: h5py.Group) -> tuple[int, int]:
    """(file number, object address): the same for every hard link to one group."""
    info = h5py.h5o.get_info(group.id)
    return info.fileno, info.addr


def _child(
    group: h5py.Group, name: str, path: str, seen: dict[tuple[int, int], str], max_chars: int
) -> tuple[dict[str, Any], h5py.Group | None]:
    """The node for one link of `group`, and the group to walk next if it is a group seen for the first time."""
    link = group.get(name, getlink=True)
    if isinstance(link, h5py.SoftLink):
        return {"name": name, "path": path, "type": "soft_link", "target": link.path}, None
    if isinstance(link, h5py.ExternalLink):
        return {"name": name, "path": path, "type": "external_link", "file": link.filename, "target": link.path}, None
    obj = group[name]  # a hard link: one name, nothing else is resolved
    if isinstance(obj, h5py.Group):
        key = _identity(obj)
        if key in seen:
            return {"name": name, "path": path, "type": "group", "seen_at": seen[key]}, None
        seen[key] = path
        return {**_object_node(obj, "group", name, path, max_chars), "children": []}, obj
    if isinstance(obj, h5py.Dataset):
        node = _object_node(obj, "dataset", name, path, max_chars)
        return {**node, "shape": _shape(obj.shape), "dtype": _dtype_name(obj.dtype)}, None
    return {**_object_node(obj, "datatype", name, path, max_chars), "dtype": _dtype_name(obj.dtype)}, None


def describe_file(path: str, *, max_nodes: int = 2000, max_attr_chars: int = 1000, max_depth: int = 32) -> dict:
    """The file's tree, breadth first so that a truncated tree still shows the top levels.

    At most `max_nodes` nodes (the root included) and `max_depth` levels below the root; when
    either limit leaves something out, the top-level "truncated" is true. Children are sorted by
    name. A group reached again through another hard link (or a cycle) is described once; later
    occurrences only say where ("seen_at").
    """
    with open_file(path) as file:
        root = {**_object_node(file, "group", "", "/", max_attr_chars), "children": []}
        seen = {_identity(file): "/"}
        count = 1
        truncated = False
        queue: deque[tuple[h5py.Group, dict[str, Any], int]] = deque([(file, root, 0)])
        while queue:
            group, node, depth = queue.popleft()
            if len(group) == 0:
                continue
            if depth >= max_depth or count >= max_nodes:
                truncated = True
                continue
            for name in sorted(group):
                if count >= max_nodes:
                    truncated = True
                    break
                child, subgroup = _child(group, name, _join(node["path"], name), seen, max_attr_chars)
                node["children"].append(child)
                count += 1
                if subgroup is not None:
                    queue.append((subgroup, child, depth + 1))
        return {**root, "truncated": truncated}


def in_file_names(dataset: str) -> list[str]:
    """The names along an absolute in-file path; nothing relative or non-normalised."""
    segments = [] if dataset == "/" else dataset[1:].split("/")
    if not dataset.startswith("/") or "\x00" in dataset or any(s in ("", ".", "..") for s in segments):
        raise Hdf5Error("an in-file path is absolute, such as /entry/data/data, with no '.', '..' or empty names")
    return segments


def resolve(file: h5py.File, dataset: str) -> h5py.HLObject:
    """Walk the path one link at a time, so that no external link is ever followed.

    Soft links are followed by rewriting the remaining path (they may lead through an external
    link themselves), at most MAX_SOFT_LINKS of them.
    """
    pending = deque(in_file_names(dataset))
    group: h5py.Group = file
    hops = 0
    obj: h5py.HLObject = file
    while pending:
        name = pending.popleft()
        link = group.get(name, getlink=True)
        if link is None:
            raise Hdf5Error(f"no such object {dataset}", 404)
        if isinstance(link, h5py.ExternalLink):
            raise Hdf5Error(f"{dataset} leads through an external link, which is not followed")
        if isinstance(link, h5py.SoftLink):
            hops += 1
            if hops > MAX_SOFT_LINKS:
                raise Hdf5Error(f"{dataset} leads through more than {MAX_SOFT_LINKS} soft links")
            if link.path.startswith("/"):
                group = file
            # HDF5 itself skips empty and '.' names; a relative target starts at the link's group.
            pending.extendleft(reversed([s for s in link.path.split("/") if s not in ("", ".")]))
            obj = group
            continue
        obj = group[name]
        if pending:
            if not isinstance(obj, h5py.Group):
                raise Hdf5Error(f"no such object {dataset}", 404)
            group = obj
    return obj


def check_readable(dataset: h5py.Dataset, name: str) -> None:
    """Refuse data kept in other files, and compression this process cannot undo (e.g. bitshuffle)."""
    if dataset.is_virtual or dataset.external:
        raise Hdf5Error(f"{name} keeps its data in other files (virtual or external storage), which are not read")
    plist = dataset.id.get_create_plist()
    for index in range(plist.get_nfilters()):
        code = plist.get_filter(index)[0]
        if not h5py.h5z.filter_avail(code):
            raise Hdf5Error(f"{name} is compressed with HDF5 filter {code}, which is not available here")


def _selection(shape: tuple[int, ...], max_elements: int) -> list[list[int]]:
    """[start, stop] per axis: the leading elements, at most max_elements in all.

    One axis: its first max_elements. More axes: one element along every axis but the last
    two, and of those a block about sqrt(max_elements) a side (31 x 32 for 1000), made longer
    along one axis when the other is shorter than that (3 x 333 for a (3, 10000) dataset).
    """
    if len(shape) == 1:
        return [[0, min(shape[0], max_elements)]]
    *leading, n_rows, n_cols = shape
    rows = min(n_rows, max(math.isqrt(max_elements), max_elements // max(n_cols, 1)))
    cols = min(n_cols, max_elements // max(rows, 1))
    return [[0, min(n, 1)] for n in leading] + [[0, rows], [0, cols]]


def _ranges(selection: list[list[int]]) -> list[range]:
    return [range(start, stop) for start, stop in selection]


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.3g} MiB"


def _chunks_touched(indexes: range, edge: int) -> int:
    """How many chunks of `edge` elements along one axis hold at least one of `indexes` (a step >= 1)."""
    if not indexes:
        return 0
    if indexes.step >= edge:  # every index in a chunk of its own
        return len(indexes)
    return indexes[-1] // edge - indexes[0] // edge + 1


def _bytes_read(dataset: h5py.Dataset, selection: list[range]) -> int:
    """What HDF5 reads to give back `selection` (indexes per axis): every compressed chunk it touches, whole."""
    itemsize = dataset.dtype.itemsize
    if dataset.chunks is None or dataset.id.get_create_plist().get_nfilters() == 0:
        return math.prod(len(indexes) for indexes in selection) * itemsize
    chunks = zip(selection, dataset.chunks, strict=True)
    return math.prod(_chunks_touched(indexes, edge) for indexes, edge in chunks) * math.prod(dataset.chunks) * itemsize


def check_selection_cost(
    dataset: h5py.Dataset, name: str, selection: list[range], itemsize: int, max_bytes: int, max_read_bytes: int
) -> None:
    """Hdf5Error(422), before any read, when `selection` (indexes per axis; [] for a scalar) holds more
    than `max_bytes` of values (`itemsize` each, as they are sent), or makes HDF5 read and decompress
    more than `max_read_bytes`: the same bounds as a preview, for a selection the person chose."""
    size = math.prod(len(indexes) for indexes in selection) * itemsize
    if size > max_bytes:
        raise Hdf5Error(
            f"this selection of {name} holds {_mib(size)} of values, more than one read may return "
            f"({_mib(max_bytes)}): select fewer elements",
            422,
        )
    cost = _bytes_read(dataset, selection)
    if cost > max_read_bytes:
        chunks = f" in chunks of shape {list(dataset.chunks)}" if dataset.chunks else ""
        raise Hdf5Error(
            f"this selection of {name} means reading {_mib(cost)}{chunks}, more than one read may "
            f"({_mib(max_read_bytes)}): select fewer chunks",
            422,
        )


def _bounded_selection(
    dataset: h5py.Dataset, name: str, max_elements: int, max_bytes: int, max_read_bytes: int
) -> list[list[int]]:
    """The leading selection (see _selection) within both byte bounds, or Hdf5Error(422) before any read.

    Fewer elements when each is large (array dtypes); only the first chunk when the selection
    would touch more compressed chunks than the read bound allows.
    """
    itemsize = dataset.dtype.itemsize  # variable-length values: the reader's memory limit bounds their contents
    if itemsize > max_bytes:
        raise Hdf5Error(
            f"one element of {name} takes {_mib(itemsize)}, more than a preview may hold ({_mib(max_bytes)})", 422
        )
    if not dataset.shape:  # a scalar: its one element, never chunked
        return []
    selection = _selection(dataset.shape, min(max_elements, max_bytes // itemsize))
    if _bytes_read(dataset, _ranges(selection)) > max_read_bytes and dataset.chunks is not None:
        selection = [[start, min(stop, edge)] for (start, stop), edge in zip(selection, dataset.chunks, strict=True)]
    cost = _bytes_read(dataset, _ranges(selection))
    if cost > max_read_bytes:
        what = f"a chunk of {_mib(cost)} (chunk shape {list(dataset.chunks)})" if dataset.chunks else _mib(cost)
        raise Hdf5Error(
            f"previewing {name} means reading {what}, more than a preview may ({_mib(max_read_bytes)})", 422
        )
    return selection


def preview_dataset(
    path: str,
    dataset: str,
    *,
    max_elements: int = 1000,
    max_chars: int = 1000,
    max_bytes: int = MAX_PREVIEW_BYTES,
    max_read_bytes: int = MAX_READ_BYTES,
) -> dict:
    """The first elements of one dataset (see _selection for which); only that slice is read.

    `dataset` is an absolute in-file path; soft links along it are followed, external links
    are not. A scalar dataset gives its value, strings are decoded (each cut to max_chars).
    The selection holds at most `max_bytes` of values, and HDF5 may read and decompress at most
    `max_read_bytes` to give it; both are checked on the metadata, before anything is read.
    """
    if max_elements < 1:
        raise ValueError("max_elements must be at least 1")
    with open_file(path) as file:
        obj = resolve(file, dataset)
        if isinstance(obj, h5py.Group):
            raise Hdf5Error(f"{dataset} is a group, not a dataset")
        if not isinstance(obj, h5py.Dataset):
            raise Hdf5Error(f"{dataset} is a named datatype, not a dataset")
        check_readable(obj, dataset)
        result = {"path": dataset, "shape": _shape(obj.shape), "dtype": _dtype_name(obj.dtype)}
        if obj.shape is None:  # a null dataspace: no value
            return {**result, "selection": [], "data": None}
        selection = _bounded_selection(obj, dataset, max_elements, max_bytes, max_read_bytes)
        data = obj[tuple(slice(start, stop) for start, stop in selection)]
        if not selection:
            return {**result, "selection": [], "data": _json_value(data, max_chars)}
        return {**result, "selection": selection, "data": _nested(data, max_chars)}
