"""h5grove's answers (meta, attr, data, stats, paths), computed in the reader, as the caller.

h5grove's content classes and encoders make the answers, so that H5Web reads them as it reads
h5grove's own; what the reader adds is hdf5.py's rules. Links are resolved one at a time here,
not by h5grove: soft links within the file are followed, an external link (which may name any
file) is shown as a link and never opened, and a path through one is refused. Values are read
only after the selection's cost, from the dataset's shape, type and chunks, is within the same
byte bounds as a preview's.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import h5py
import numpy as np
from h5grove.content import (
    DatasetContent,
    DatatypeContent,
    EntityContent,
    ExternalLinkContent,
    GroupContent,
    SoftLinkContent,
)
from h5grove.encoders import encode
from h5grove.utils import QueryArgumentError, hdf_path_join

from .hdf5 import (
    MAX_PREVIEW_BYTES,
    MAX_READ_BYTES,
    Hdf5Error,
    check_readable,
    check_selection_cost,
    in_file_names,
    open_file,
    resolve,
)

HEADERS = ("Content-Type", "Content-Disposition")  # what the service passes on of an encoder's headers


class _Group(GroupContent):
    """A group whose children are resolved by `content_at` too (h5grove's own would open external links)."""

    def _get_child_metadata_content(self, depth: int = 0) -> list[dict[str, Any]]:
        group = self._h5py_entity
        return [content_at(self._h5file, hdf_path_join(self.path, name)).metadata(depth) for name in group]


def _entity(file: h5py.File, path: str) -> h5py.HLObject | h5py.SoftLink | h5py.ExternalLink:
    """What `path` names, as h5grove's "only_valid" link resolution would give it, but opening no other file."""
    names = in_file_names(path)
    if not names:
        return file
    parent = resolve(file, "/" + "/".join(names[:-1]))
    link = parent.get(names[-1], getlink=True) if isinstance(parent, h5py.Group) else None
    if link is None:
        raise Hdf5Error(f"{path} is not a valid path in this file", 404)
    if isinstance(link, h5py.ExternalLink):
        return link
    if isinstance(link, h5py.SoftLink):
        try:
            return resolve(file, path)
        except Hdf5Error:  # dangling, or on to an external link: shown as the link itself
            return link
    return parent[names[-1]]


def content_at(file: h5py.File, path: str) -> EntityContent:
    return _content(file, path, _entity(file, path))


def _content(file: h5py.File, path: str, entity: Any) -> EntityContent:
    """h5grove's content class for what `_entity` found."""
    if isinstance(entity, h5py.ExternalLink):
        return ExternalLinkContent(path, entity)
    if isinstance(entity, h5py.SoftLink):
        return SoftLinkContent(path, entity)
    if isinstance(entity, h5py.Group):
        return _Group(path, entity, file)
    if isinstance(entity, h5py.Dataset):
        return DatasetContent(path, entity)
    return DatatypeContent(path, entity)


def _indexes(dataset: h5py.Dataset, path: str, selection: list[Any] | None) -> tuple[tuple[Any, ...], list[range]]:
    """h5py's index for a selection (members as h5grove_api parses them), and the indexes it reads per axis.

    Missing trailing members select whole axes, as in NumPy; an index past an axis is refused.
    """
    shape = dataset.shape
    members = list(selection or [])
    if len(members) > len(shape):
        raise Hdf5Error(f"the selection has {len(members)} members, {path} has {len(shape)} dimensions")
    members += [[None, None, None]] * (len(shape) - len(members))
    index: list[Any] = []
    spans: list[range] = []
    for axis, (member, length) in enumerate(zip(members, shape, strict=True)):
        if isinstance(member, int):
            position = member + length if member < 0 else member
            if not 0 <= position < length:
                raise Hdf5Error(f"index {member} is outside axis {axis} of {path} (length {length})")
            index.append(position)
            spans.append(range(position, position + 1))
        else:
            start, stop, step = slice(*member).indices(length)
            index.append(slice(start, max(start, stop), step))
            spans.append(range(start, stop, step))
    return tuple(index), spans


def _sent_itemsize(dtype: np.dtype, conversion: str) -> int:
    """Bytes per value as sent: `dtype=safe` widens half floats to float32 (h5grove's conversion)."""
    if conversion == "safe" and dtype.kind == "f" and dtype.itemsize < 4:
        return 4
    return dtype.itemsize


def _index(dataset: h5py.Dataset, path: str, request: dict[str, Any], bounds: dict[str, int]) -> Any:
    """The h5py index of a data or stats request, after its cost is checked: refusals come before any read."""
    check_readable(dataset, path)
    if dataset.shape is None:  # a null dataspace: no values, nothing to slice
        if request["selection"] or request["format"] != "json":
            raise Hdf5Error(f"{path} has no values (an empty dataspace): only JSON, without a selection")
        return None
    if request["format"] == "bin" and dataset.dtype.hasobject:
        raise Hdf5Error(f"{path} holds values of variable size: format=bin sends fixed-size values only, use json")
    index, spans = _indexes(dataset, path, request["selection"])
    itemsize = _sent_itemsize(dataset.dtype, request["dtype"])
    check_selection_cost(dataset, path, spans, itemsize, bounds["max_bytes"], bounds["max_read_bytes"])
    return index


def _attributes(obj: h5py.HLObject, path: str, keys: list[str] | None, max_bytes: int) -> list[str]:
    """The attribute names asked for, refused before any is read when their values hold more than max_bytes."""
    names = list(obj.attrs) if keys is None else keys
    size = 0
    for name in names:
        if name not in obj.attrs:
            raise Hdf5Error(f"{path} has no attribute {name!r}", 404)
        attr = obj.attrs.get_id(name)
        size += (0 if attr.shape is None else math.prod(attr.shape)) * attr.dtype.itemsize
    if size > max_bytes:
        raise Hdf5Error(
            f"the attributes asked for hold {size / (1 << 20):.3g} MiB, more than one read may return "
            f"({max_bytes / (1 << 20):.3g} MiB): ask for fewer with attr_keys",
            422,
        )
    return names


def _paths(group: h5py.Group, path: str, max_bytes: int) -> list[str]:
    """Every path below a group, links not followed (as h5grove's /paths/), at most max_bytes of them."""
    found = [path]
    size = len(path)

    def visit(name: bytes) -> bool | None:
        nonlocal size
        found.append(hdf_path_join(path, name.decode("utf-8", errors="replace")))
        size += len(found[-1])
        return size > max_bytes or None  # anything but None ends the visit

    if group.id.links.visit(visit):
        raise Hdf5Error(f"the paths below {path} take more than one read may return ({max_bytes} bytes)", 422)
    return found


def _payload(file: h5py.File, request: dict[str, Any], bounds: dict[str, int]) -> Any:
    endpoint, path = request["endpoint"], request["path"]
    entity = _entity(file, path)
    content = _content(file, path, entity)
    if endpoint == "meta":
        return content.metadata()
    if isinstance(entity, (h5py.SoftLink, h5py.ExternalLink)):
        raise Hdf5Error(f"{path} is a link that is not followed: it has no attributes, values or paths")
    if endpoint == "attr":
        return content.attributes(_attributes(entity, path, request["attr_keys"], bounds["max_bytes"]))
    if endpoint == "paths":
        if not isinstance(entity, h5py.Group):
            raise Hdf5Error(f"{path} is not a group")
        return _paths(entity, path, bounds["max_bytes"])
    if not isinstance(content, DatasetContent):
        raise Hdf5Error(f"{path} is not a dataset")
    index = _index(entity, path, request, bounds)
    if endpoint == "stats":
        return content.data_stats(index)
    return content.data(index, request["flatten"], request["dtype"])


def h5grove_answer(
    target: str, request: dict[str, Any], *, max_bytes: int = MAX_PREVIEW_BYTES, max_read_bytes: int = MAX_READ_BYTES
) -> dict[str, Any]:
    """{"headers": the encoder's Content-Type (and Content-Disposition), "body": base64 of its bytes}.

    The bounds are a preview's (hdf5.preview_dataset): `max_bytes` of values, `max_read_bytes` read.
    """
    with open_file(target) as file:
        payload = _payload(file, request, {"max_bytes": max_bytes, "max_read_bytes": max_read_bytes})
        try:
            response = encode(payload, request["format"])
        except QueryArgumentError as err:  # e.g. csv of strings, tiff of a scalar
            raise Hdf5Error(str(err)) from None
    headers = {name: response.headers[name] for name in HEADERS if name in response.headers}
    return {"headers": headers, "body": base64.b64encode(response.content).decode("ascii")}
