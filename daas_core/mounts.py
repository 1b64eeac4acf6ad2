"""The mount model: a site's data locations, filled in per proposal.

A site describes named locations once (`raw: /data/visitor/{proposal}/{beamline}/raw`,
read-only; `processed: ...`, writable); each of a person's proposals turns them into
concrete `Mount`s from its user-office metadata. Every backend and the data service use
the same `Mount`s: Slurm and local servers get a folder of links and `$DAAS_DATA`,
Apptainer binds them, Kubernetes and OpenStack get volumes and mount lines (mount_builders.py).

The model only says where data is; who may read or write it is the filesystem's business
(Unix groups, ACLs, read-only binds). Paths are held to a conservative character set so
that they can go into bind specifications, fstab lines and environment values unquoted.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from .loading import SiteFileError, load_model, parse_model
from .proposals import Proposal

# One path segment of a mount source or target: no separators (: , for binds and fstab), no spaces.
SEGMENT = re.compile(r"[A-Za-z0-9_+@=~][A-Za-z0-9_.+@=~-]{0,254}")
LocationName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
# Fields a location template may use; each comes from the proposal (user-office metadata).
TEMPLATE_FIELDS = frozenset({"proposal", "beamline", "instrument", "raw_data", "processed_data", "year"})
# These fill a whole path (or its start) and may hold '/'; the others fill one segment.
PATH_FIELDS = frozenset({"raw_data", "processed_data"})
# The same rules again as JSON Schema patterns, for editors (`daas-data schema`): the characters a template
# may hold and how it starts; which fields it names, and '.' or '..' segments, are the loader's check.
TEMPLATE_PATTERN = rf"^(/|\{{({'|'.join(sorted(PATH_FIELDS))})\}})[A-Za-z0-9_.+@=~{{}}/-]{{0,4095}}$"
ROOT_PATTERN = rf"^(/{SEGMENT.pattern})+$"


class DataConfigError(SiteFileError):
    """A data-locations file that cannot be used; the message names the file and the field."""


def is_safe_path(path: str) -> bool:
    """Absolute, normalised (no '.', '..' or '//'), every segment from the safe set."""
    if not path.startswith("/") or len(path) > 4096:
        return False
    segments = path[1:].split("/")
    return path == "/" or all(SEGMENT.fullmatch(segment) for segment in segments)


class Location(BaseModel):
    """One named data location of every proposal, as the site admin writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: LocationName = Field(description="Short name: the link name and the data service's URL part.")
    path: str = Field(
        description="Path template, e.g. /data/visitor/{proposal}/{beamline}/raw.",
        json_schema_extra={"pattern": TEMPLATE_PATTERN},
    )
    writable: bool = Field(False, description="False: mounted read-only wherever the backend can enforce it.")
    description: str = Field("", max_length=500)

    @field_validator("path")
    @classmethod
    def _template(cls, path: str) -> str:
        parts = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(path) if name is not None]
        if any(spec or conv for _, spec, conv in parts):
            raise ValueError("template fields take no format specification or conversion")
        unknown = {name for name, _, _ in parts} - TEMPLATE_FIELDS
        if unknown:
            raise ValueError(f"unknown template field(s) {sorted(unknown)}; use {sorted(TEMPLATE_FIELDS)}")
        sample = {name: "/x" if name in PATH_FIELDS else "x" for name in TEMPLATE_FIELDS}
        filled = path.format(**sample)
        if not is_safe_path(filled):
            raise ValueError("a location is an absolute path of letters, digits and _ . + @ = ~ - segments")
        return path


class DataLocations(BaseModel):
    """The site's data locations and where servers see them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    locations: list[Location] = Field(default_factory=list)
    link_dir: str = Field(
        "data",
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$",
        description="Folder in the server's working directory holding <proposal>/<location> links.",
    )
    mount_root: str = Field(
        "/data/proposals",
        description="Where containers, pods and VMs see the data: <mount_root>/<proposal>/<location>.",
        json_schema_extra={"pattern": ROOT_PATTERN},
    )
    nfs_server: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$",
        description="NFS server that exports the same paths, for pods and VMs (none: host paths).",
    )

    @field_validator("mount_root")
    @classmethod
    def _root(cls, root: str) -> str:
        if not is_safe_path(root) or root == "/":
            raise ValueError("mount_root is an absolute path below /")
        return root

    @field_validator("locations")
    @classmethod
    def _unique(cls, locations: list[Location]) -> list[Location]:
        names = [location.name for location in locations]
        if len(names) != len(set(names)):
            raise ValueError("location names must be unique")
        return locations


@dataclass(frozen=True)
class Mount:
    """One location of one proposal: where it is, and whether the person may write to it."""

    proposal: str
    name: str
    source: str
    writable: bool

    def target(self, root: str) -> str:
        """Where a container, pod or VM sees it."""
        return f"{root}/{self.proposal}/{self.name}"


def template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def template_values(proposal: Proposal) -> dict[str, str | None]:
    """The values a proposal gives a location template; None where the metadata lacks them."""
    instrument = proposal.instrument.strip() or None
    return {
        "proposal": proposal.id,
        "beamline": instrument.lower() if instrument else None,
        "instrument": instrument,
        "raw_data": proposal.raw_data,
        "processed_data": proposal.processed_data,
        "year": str(proposal.start.year) if proposal.start else None,
    }


def fill(location: Location, proposal: Proposal) -> str | None:
    """The location's path for this proposal, or None when the metadata cannot fill it safely."""
    values = template_values(proposal)
    used = template_fields(location.path)
    for name in used:
        value = values[name]
        if value is None:
            return None
        if name in PATH_FIELDS:
            if not is_safe_path(value.rstrip("/") or "/"):
                return None
        elif not SEGMENT.fullmatch(value):
            return None
    path = location.path.format(**{name: values[name].rstrip("/") for name in used})  # type: ignore[union-attr]
    return path if is_safe_path(path) else None


def resolve_mounts(config: DataLocations | None, proposals: Iterable[Proposal]) -> list[Mount]:
    """Every location of every given proposal that its metadata can fill, in a stable order."""
    if config is None:
        return []
    mounts = []
    for proposal in proposals:
        for location in config.locations:
            source = fill(location, proposal)
            if source is not None:
                mounts.append(Mount(proposal.id, location.name, source, location.writable))
    return mounts


def mounts_env(config: DataLocations | None, mounts: Sequence[Mount]) -> dict[str, str]:
    """The server's view of its data: `$DAAS_DATA` (JSON list) and the link folder's name."""
    if config is None:
        return {}
    return {"DAAS_DATA": json.dumps([asdict(mount) for mount in mounts]), "DAAS_DATA_DIR": config.link_dir}


def mounts_from_env(environ: Mapping[str, str]) -> list[Mount]:
    """Read `$DAAS_DATA` back (in a notebook, or a tool that runs there)."""
    return [Mount(**item) for item in json.loads(environ.get("DAAS_DATA") or "[]")]


LOCATIONS_SHAPE = "with a 'locations' list"


def parse_data_locations(raw: Any, source: str) -> DataLocations:
    """Validate already-parsed YAML; errors name the source and the field."""
    return parse_model(DataLocations, raw, source, "data locations", DataConfigError, shape=LOCATIONS_SHAPE)


def load_data_locations(path: str | Path) -> DataLocations:
    """Read and validate a data-locations YAML file (shared by the spawner and the data service)."""
    return load_model(DataLocations, path, "data locations", DataConfigError, shape=LOCATIONS_SHAPE)
