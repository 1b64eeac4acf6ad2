"""Path-safety rules of the data service: what a request may name, and where it may lead.

Two checks, both required; standard library only, as the reader (a process per request)
imports this. `parse_request_path` runs in the service on the URL path
(already percent-decoded once by tornado) and refuses anything but plain names: traversal,
absolute paths, leftover encodings (double encoding), control characters, very long paths.
`resolve_inside` runs in the reader, as the user, on the real filesystem: a symlink may not
lead out of its location. Beyond both, the kernel checks the user's own rights on every
read, so even a rule missed here cannot reach more than the user could read in a shell.
Messages name only what the user sent, never a path on the server.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
_LOCATION = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")


class PathRefused(ValueError):
    """A request path the service will not follow; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DataPath:
    """A checked request: a proposal, one of its locations, and plain names below it."""

    proposal: str
    location: str
    names: tuple[str, ...]

    @property
    def relative(self) -> str:
        return "/".join(self.names)


def parse_request_path(path: str) -> DataPath:
    """Split `<proposal>/<location>/<names...>` and refuse anything that is not plain names."""
    if len(path.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise PathRefused(400, "the path is too long")
    if _CONTROL.search(path):
        raise PathRefused(400, "the path contains control characters")
    if "\\" in path:
        raise PathRefused(400, "the path contains a backslash")
    if _ENCODED.search(path):
        raise PathRefused(400, "the path contains encoded characters (encode a name once)")
    parts = path.split("/")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]  # a trailing slash names the same directory
    if len(parts) < 2:
        raise PathRefused(404, "name a proposal and one of its locations")
    proposal, location, *names = parts
    for name in parts:  # the proposal must then be one of the caller's own, exactly
        if name == "":
            raise PathRefused(400, "the path has an empty part (// or an absolute path)")
        if name in (".", ".."):
            raise PathRefused(400, "the path may not contain . or ..")
        if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise PathRefused(400, "a name in the path is too long")
    if not _LOCATION.fullmatch(location):
        raise PathRefused(404, "no such location")
    return DataPath(proposal, location, tuple(names))


def resolve_inside(root: str, names: tuple[str, ...]) -> str:
    """The real path of `root/names`, refused when symlinks lead it out of `root`."""
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(real_root, *names))
    if target != real_root and not target.startswith(real_root.rstrip("/") + "/"):
        raise PathRefused(403, "the path leads outside its location")
    return target
