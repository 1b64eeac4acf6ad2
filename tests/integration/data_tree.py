"""Experiment data on disk as a facility keeps it: one Unix group per proposal, real permissions.

    <base>/visitor/<proposal>/<beamline>/raw     root:<group> 0750, files 0640: members read, nobody writes
    <base>/visitor/<proposal>/processed          root:<group> 2770: members write
    <base>/public/readme.txt                     world-readable, but in no proposal's location

alice is in 20231234's group, bob in 20230042's. 20220001 is alice's in the user office, but its group
does not have her (a membership that has not reached the nodes yet): her servers cannot open its data.
alice's raw folder also holds a NeXus file made
with h5py and two symlinks that lead out of her location: into bob's raw data, and to the
world-readable file (which only the service's own check can refuse).
"""

from __future__ import annotations

import grp
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

GROUP = "daas-p{proposal}-test"  # not the demo's groups: it puts alice in 20220001's
MEMBERS = {"20231234": (("alice",), "id11"), "20230042": (("bob",), "d22"), "20220001": ((), "bm02")}
# What the test users' logins carry (auth_state["proposals"]) on the Kubernetes and OpenStack sites.
PROPOSALS = {
    "alice": [{"id": "20231234", "instrument": "ID11"}],
    "bob": [{"id": "20230042", "instrument": "D22"}],
    "carol": [],
}
FRAMES = np.arange(10 * 32 * 32, dtype=np.uint16).reshape(10, 32, 32)
BLOB = bytes(range(256)) * 64  # 16 KiB


@dataclass(frozen=True)
class DataTree:
    base: Path

    def raw(self, proposal: str) -> Path:
        return self.base / "visitor" / proposal / MEMBERS[proposal][1] / "raw"

    def processed(self, proposal: str) -> Path:
        return self.base / "visitor" / proposal / "processed"

    @property
    def locations_yaml(self) -> str:
        return (
            "locations:\n"
            f"  - name: raw\n    path: {self.base}/visitor/{{proposal}}/{{beamline}}/raw\n"
            f"  - name: processed\n    path: {self.base}/visitor/{{proposal}}/processed\n    writable: true\n"
        )


def _group(name: str, members: tuple[str, ...]) -> int:
    """The group with exactly these members, whatever an earlier run left."""
    subprocess.run(["groupadd", "-f", name], check=True, timeout=30)
    subprocess.run(["gpasswd", "-M", ",".join(members), name], check=True, timeout=30, capture_output=True)
    return grp.getgrnam(name).gr_gid


def _own(path: Path, gid: int, mode: int) -> None:
    os.chown(path, 0, gid)
    os.chmod(path, mode)


def make_data_tree(base: Path) -> DataTree:
    tree = DataTree(base)
    for proposal, (users, _beamline) in MEMBERS.items():
        gid = _group(GROUP.format(proposal=proposal), users)
        raw, processed = tree.raw(proposal), tree.processed(proposal)
        raw.mkdir(parents=True)
        processed.mkdir()
        (raw / "scan_0001").mkdir()
        (raw / "scan_0001" / "frames.bin").write_bytes(BLOB)
        (raw / "notes.txt").write_text(f"beamtime {proposal}\n")
        for path in (raw / "scan_0001" / "frames.bin", raw / "notes.txt"):
            _own(path, gid, 0o640)
        for path in (raw / "scan_0001", raw, raw.parent, raw.parent.parent):
            _own(path, gid, 0o750)
        _own(processed, gid, 0o2770)
    (base / "public").mkdir()
    (base / "public" / "readme.txt").write_text("world-readable, outside every location\n")
    (base / "visitor").chmod(0o755)

    a_raw = tree.raw("20231234")
    with h5py.File(a_raw / "sample.nxs", "w") as nexus:
        entry = nexus.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data.attrs["signal"] = "data"
        data.create_dataset("data", data=FRAMES)
        entry.create_dataset("title", data="Strain scan")
    _own(a_raw / "sample.nxs", grp.getgrnam(GROUP.format(proposal="20231234")).gr_gid, 0o640)
    os.symlink(tree.raw("20230042") / "notes.txt", a_raw / "bobs-notes.txt")
    os.symlink(base / "public" / "readme.txt", a_raw / "readme.txt")
    os.symlink(tree.raw("20230042"), a_raw / "bobs-raw")
    return tree
