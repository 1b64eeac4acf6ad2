"""What each backend needs from a person's `Mount`s: pod volumes, cloud-init mount lines, Apptainer binds.

Pure functions, no I/O: the Kubernetes and OpenStack backends and the Apptainer launcher call them
with the mounts `resolve_mounts` gave and the site's `DataLocations`.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence

from .mounts import DataLocations, Mount, is_safe_path

# Kubernetes volume names are DNS-1123 labels.
LABEL_MAX = 63
HASH_LENGTH = 8
NFS_READ_ONLY = "ro,nosuid,nodev,noexec,_netdev"
NFS_WRITABLE = "rw,nosuid,nodev,_netdev"


def _checked(path: str) -> str:
    """Defence in depth: `resolve_mounts` only gives safe paths, but a `Mount` can be built by hand."""
    if not is_safe_path(path):
        raise ValueError(f"unsafe mount path {path!r}: not absolute, not normalised or outside the safe characters")
    return path


def _readable_name(mount: Mount) -> str:
    """`data-<proposal>-<name>` as a label: lower case, anything else mapped to '-', no trailing '-'."""
    return re.sub(r"[^a-z0-9-]", "-", f"data-{mount.proposal}-{mount.name}".lower()).rstrip("-")


def _hashed_name(mount: Mount, readable: str) -> str:
    """The readable name cut to fit, plus a hash of the exact (case-sensitive) proposal and location."""
    digest = hashlib.sha256(f"{mount.proposal}\0{mount.name}".encode()).hexdigest()[:HASH_LENGTH]
    return f"{readable[: LABEL_MAX - HASH_LENGTH - 1].rstrip('-')}-{digest}"


def volume_names(mounts: Sequence[Mount]) -> list[str]:
    """One label per mount; those too long or sharing a readable name (MX_2, mx.2) get a hash."""
    readable = [_readable_name(mount) for mount in mounts]
    counts = Counter(readable)
    names = [
        name if len(name) <= LABEL_MAX and counts[name] == 1 else _hashed_name(mount, name)
        for mount, name in zip(mounts, readable, strict=True)
    ]
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"mounts given more than once (volume names {repeated})")
    return names


def kubernetes_volumes(config: DataLocations, mounts: Sequence[Mount]) -> tuple[list[dict], list[dict]]:
    """(volumes, volumeMounts) in Kubernetes API shape: NFS when the site has a server, else host paths."""
    volumes: list[dict] = []
    volume_mounts: list[dict] = []
    for mount, name in zip(mounts, volume_names(mounts), strict=True):
        source, read_only = _checked(mount.source), not mount.writable
        if config.nfs_server:
            volumes.append({"name": name, "nfs": {"server": config.nfs_server, "path": source, "readOnly": read_only}})
        else:
            volumes.append({"name": name, "hostPath": {"path": source, "type": "Directory"}})
        target = _checked(mount.target(config.mount_root))
        volume_mounts.append({"name": name, "mountPath": target, "readOnly": read_only})
    return volumes, volume_mounts


def cloud_init_mounts(config: DataLocations, mounts: Sequence[Mount]) -> dict:
    """A #cloud-config fragment: fstab lines for the NFS exports and a bootcmd creating the mount points."""
    if not mounts:
        return {}
    if not config.nfs_server:
        raise ValueError("data mounts for VMs need an NFS server: set nfs_server in the data locations file")
    lines: list[list[str]] = []
    bootcmd: list[list[str]] = []
    for mount in mounts:
        source, target = _checked(mount.source), _checked(mount.target(config.mount_root))
        options = NFS_WRITABLE if mount.writable else NFS_READ_ONLY
        lines.append([f"{config.nfs_server}:{source}", target, "nfs", options, "0", "0"])
        bootcmd.append(["mkdir", "-p", target])
    return {"bootcmd": bootcmd, "mounts": lines}


def apptainer_bind_args(mounts: Sequence[Mount]) -> list[str]:
    """Bind each source at the same path, so the links in the server's working tree resolve inside too."""
    return [f"--bind={_checked(m.source)}:{m.source}:{'rw' if m.writable else 'ro'}" for m in mounts]
