"""The data service's reader: one short process per request, running as the requesting user.

The service starts it through its user prefix (`sudo -n -u <user> --`), writes one JSON
request to its stdin and reads one JSON answer from its stdout; for `read`, a JSON header
line and then the file's bytes. Because it runs as the user, the kernel applies their
own permissions (groups, ACLs, read-only mounts) to every open: the service never reads
data with its own rights. The service has already checked the request (paths.py); the
reader re-checks that symlinks stay inside the location, on the real filesystem.

    {"op": "list", "root": "/data/visitor/A/raw", "names": ["scan1"], "offset": 0, "limit": 100}
    {"op": "read", "root": ..., "names": [...], "start": 0, "end": 99}     # end inclusive; or "suffix": 100
    {"op": "hdf5", "root": ..., "names": [...], "dataset": "/entry/data"}  # dataset optional: the tree
                                    # a preview's byte bounds (hdf5.preview_dataset): "max_bytes", "max_read_bytes"
    {"op": "h5grove", "root": ..., "names": [...], "endpoint": "data", "path": "/entry/data/data",
     "selection": [0, [null, null, 2]], "format": "bin", ...}     # h5grove_api.H5groveQuery, same bounds;
                                    # answers {"headers": {...}, "body": <base64 of h5grove's encoding>}

Every request also carries the reader's resource limits, which it applies to itself before it
reads anything: {"limits": {"memory": <bytes of address space>, "cpu_seconds": <seconds>}}. It
applies them itself because only limits set in the process that reads hold: sudo and PAM set
their own. A read that needs more memory fails with 422; one that needs more CPU time is
killed by the kernel (SIGXCPU), which the service reports. The reader also dies with its
parent (sudo, or the service), so whatever ends that parent ends the read.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import stat
import sys
from typing import Any, BinaryIO

from .paths import PathRefused, resolve_inside

CHUNK = 1 << 20


def entry_type(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def list_directory(target: str, offset: int, limit: int) -> dict[str, Any]:
    """One page of a directory, sorted by name; links are shown as links, not followed."""
    if not os.path.isdir(target):
        raise PathRefused(400, "not a directory")
    with os.scandir(target) as scan:
        names = sorted(entry.name for entry in scan)
    entries = []
    for name in names[offset : offset + limit]:
        try:
            info = os.lstat(os.path.join(target, name))
        except OSError:
            continue  # vanished since the scan
        entries.append({"name": name, "type": entry_type(info.st_mode), "size": info.st_size, "mtime": info.st_mtime})
    return {"total": len(names), "offset": offset, "limit": limit, "entries": entries}


def byte_range(size: int, start: int | None, end: int | None, suffix: int | None) -> tuple[int, int] | None:
    """Inclusive (first, last) bytes of a Range request, or None when it cannot be satisfied."""
    if suffix is not None:
        if suffix <= 0 or size == 0:
            return None
        return max(size - suffix, 0), size - 1
    first = start or 0
    last = size - 1 if end is None else min(end, size - 1)
    if first >= size or last < first:
        return None
    return first, last


def stream_file(target: str, request: dict[str, Any], out: BinaryIO) -> None:
    """Header line {size, first, last, mtime} (or an error), then exactly those bytes."""
    fd = os.open(target, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)  # a FIFO must not block us
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise PathRefused(400, "not a file")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb", buffering=0) as source:
        whole = request.get("start") is None and request.get("end") is None and request.get("suffix") is None
        span = (
            (0, info.st_size - 1)
            if whole
            else byte_range(info.st_size, request.get("start"), request.get("end"), request.get("suffix"))
        )
        if span is None:
            write_json(out, {"error": {"status": 416, "message": "range not satisfiable"}, "size": info.st_size})
            return
        first, last = span
        write_json(out, {"size": info.st_size, "first": first, "last": last, "mtime": info.st_mtime})
        source.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            chunk = source.read(min(CHUNK, remaining))
            if not chunk:
                break  # the file shrank; the service sees a short body
            out.write(chunk)
            remaining -= len(chunk)
        out.flush()


def describe_hdf5(target: str, request: dict[str, Any]) -> dict[str, Any]:
    """A file's tree or a dataset's preview (op "hdf5"), or an h5grove answer (op "h5grove")."""
    try:  # h5py (and h5grove) are imported only by the requests that need them
        from . import hdf5

        if request["op"] == "h5grove":
            from .h5grove_content import h5grove_answer
    except ImportError as err:
        raise PathRefused(501, f"HDF5 support ({err.name}) is not installed") from None
    if not os.path.isfile(target):
        raise PathRefused(400, "not a file")
    bounds = {name: int(request[name]) for name in ("max_bytes", "max_read_bytes") if name in request}
    try:
        if request["op"] == "h5grove":
            return h5grove_answer(target, request, **bounds)
        if not request.get("dataset"):
            return hdf5.describe_file(target)
        return hdf5.preview_dataset(target, request["dataset"], **bounds)
    except hdf5.Hdf5Error as err:
        raise PathRefused(err.status, str(err)) from None


def write_json(out: BinaryIO, document: dict[str, Any]) -> None:
    out.write(json.dumps(document).encode() + b"\n")
    out.flush()


def answer(request: dict[str, Any], out: BinaryIO) -> None:
    target = resolve_inside(request["root"], tuple(request["names"]))
    op = request["op"]
    if op == "read":
        stream_file(target, request, out)
    elif op == "list":
        write_json(out, list_directory(target, int(request.get("offset", 0)), int(request.get("limit", 100))))
    elif op in ("hdf5", "h5grove"):
        write_json(out, describe_hdf5(target, request))
    else:
        raise PathRefused(400, f"unknown operation {op!r}")


def error_document(err: Exception) -> dict[str, Any]:
    """The answer for a failure: an HTTP status and a message that names no server path."""
    if isinstance(err, PathRefused):
        return {"error": {"status": err.status, "message": str(err)}}
    if isinstance(err, (FileNotFoundError, NotADirectoryError)):
        return {"error": {"status": 404, "message": "no such file or directory"}}
    if isinstance(err, PermissionError):
        return {"error": {"status": 403, "message": "permission denied"}}
    if isinstance(err, OSError):
        return {"error": {"status": 500, "message": f"cannot read: {err.strerror or 'I/O error'}"}}
    raise err


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent ends (Linux), and end now if it already has.

    A timeout kills the reader's whole process group when the service may; a service that may
    only signal its sudo still ends the read this way.
    """
    if sys.platform != "linux":
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent ended before the request above
        os._exit(1)


def _limit(kind: int, soft: int, hard: int) -> None:
    """Set a limit, never above the hard one this process already has (PAM or sudo may have set one)."""
    _, current = resource.getrlimit(kind)
    if current != resource.RLIM_INFINITY:
        hard = min(hard, current)
    resource.setrlimit(kind, (min(soft, hard), hard))


def limit_resources(limits: dict[str, int]) -> None:
    """Address space and CPU time as the service asks, no core files; before anything large is imported."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # numpy's BLAS threads would each reserve address space
    os.environ["OMP_NUM_THREADS"] = "1"
    _limit(resource.RLIMIT_CORE, 0, 0)
    if limits.get("memory"):
        _limit(resource.RLIMIT_AS, int(limits["memory"]), int(limits["memory"]))
    if limits.get("cpu_seconds"):
        # SIGXCPU at the soft limit ends the reader; SIGKILL a second later if anything held it off.
        _limit(resource.RLIMIT_CPU, int(limits["cpu_seconds"]), int(limits["cpu_seconds"]) + 1)


def main() -> None:
    die_with_parent()
    out = sys.stdout.buffer
    try:
        request = json.loads(sys.stdin.buffer.read(1 << 16))
        limit_resources(request.get("limits", {}))
        answer(request, out)
    except MemoryError:
        write_json(out, {"error": {"status": 422, "message": "this read needs more memory than a reader may use"}})
    except Exception as err:
        write_json(out, error_document(err))


if __name__ == "__main__":
    main()
