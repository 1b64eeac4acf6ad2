"""Create the demo's experiment data (run as root by run.sh --oidc): a facility's layout, in small.

For every proposal in proposals.yaml with an instrument: a Unix group `daas-p<id>`, raw data
(a NeXus file made with h5py, a log) readable by the group and writable by nobody, and a
processed folder the group may write. Members are the people proposals.yaml lists (Unix users
of the Slurm demo), or, for the local demo where one account runs every server, that account.
Usage: python make_data.py PROPOSALS_YAML (--members-from-file | --member ACCOUNT)
"""

import argparse
import grp
import os
import pwd
import subprocess
from pathlib import Path

import h5py
import numpy as np
import yaml

ROOT = Path("/srv/daas-demo-data")


def group_for(proposal: str, members: set[str]) -> int:
    name = f"daas-p{proposal}"
    subprocess.run(["/usr/sbin/groupadd", "-f", name], check=True)
    for member in sorted(members):
        subprocess.run(["/usr/sbin/usermod", "-a", "-G", name, member], check=True)
    return grp.getgrnam(name).gr_gid


def own(path: Path, gid: int, mode: int) -> None:
    os.chown(path, 0, gid)
    os.chmod(path, mode)


def write_nexus(path: Path, proposal: str, instrument: str) -> None:
    """A small NeXus file: an NXentry with an NXdata image stack, as a detector would write."""
    frames = np.random.default_rng(int(proposal)).poisson(20, size=(5, 64, 64)).astype(np.uint16)
    with h5py.File(path, "w") as nexus:
        entry = nexus.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.create_dataset("title", data=f"Demo scan of proposal {proposal}")
        entry.create_group("instrument").attrs["NX_class"] = "NXinstrument"
        entry["instrument"].create_dataset("name", data=instrument)
        data = entry.create_group("data")
        data.attrs.update({"NX_class": "NXdata", "signal": "data"})
        data.create_dataset("data", data=frames, compression="gzip")


def make(proposal: dict, members: set[str]) -> None:
    proposal_id, instrument = str(proposal["id"]), proposal["instrument"]
    gid = group_for(proposal_id, members)
    top = ROOT / "visitor" / proposal_id
    raw = top / instrument.lower() / "raw"
    processed = top / "processed"
    raw.mkdir(parents=True, exist_ok=True)
    processed.mkdir(exist_ok=True)
    write_nexus(raw / "scan_0001.nxs", proposal_id, instrument)
    (raw / "beamtime.log").write_text(f"{proposal_id} at {instrument}: {proposal.get('title', '')}\n")
    for path in (raw / "scan_0001.nxs", raw / "beamtime.log"):
        own(path, gid, 0o640)
    for path in (raw, raw.parent, top):
        own(path, gid, 0o750)
    own(processed, gid, 0o2770)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("proposals", type=Path)
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--members-from-file", action="store_true", help="the people proposals.yaml lists")
    who.add_argument("--member", help="one account that is a member of every proposal")
    args = parser.parse_args()
    people = yaml.safe_load(args.proposals.read_text())
    (ROOT / "visitor").mkdir(parents=True, exist_ok=True)
    for path in (ROOT, ROOT / "visitor"):
        path.chmod(0o755)
    by_proposal: dict[str, tuple[dict, set[str]]] = {}
    for person, proposals in people.items():
        for proposal in proposals:
            entry = by_proposal.setdefault(str(proposal["id"]), (proposal, set()))
            if args.member:
                entry[1].add(args.member)
            elif _exists(person):
                entry[1].add(person)
    for proposal, members in by_proposal.values():
        if proposal.get("instrument"):
            make(proposal, members)
    print(f"demo data: {', '.join(sorted(by_proposal))} in {ROOT}")


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


if __name__ == "__main__":
    main()
