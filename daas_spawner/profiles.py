"""Site profiles: the typed model of what a facility offers, loaded from YAML.

A profile is written by the site admin. It names a backend and bounds every choice a
user may make (partitions, cores, memory, GPUs, wall time, architecture, environment).
The options model (options.py) checks user input against these bounds; the form renders
from them. Loading fails loudly, naming the file and the field, so a typo stops the hub
at start-up instead of surfacing as a strange job later.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    NonNegativeInt,
    PositiveInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from daas_core.fields import (
    AbsolutePath,
    AccountTemplate,
    Identifier,
    MemoryMB,
    ModuleName,
    PlainText,
    SchedulerArg,
    SchedulerName,
    Strict,
    UrlPath,
    WalltimeSeconds,
)
from daas_core.loading import SiteFileError, load_model, parse_model

# Glob patterns over proposal ids (fnmatch: * ? [..]); the proposal id characters plus wildcards.
ProposalPattern = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.*?\[\]!-]{1,64}$")]

CorePreset = Literal["min", "medium", "max", "whole_node"]
CORE_PRESETS: tuple[CorePreset, ...] = ("min", "medium", "max", "whole_node")


class ProfileConfigError(SiteFileError):
    """A profiles file that cannot be used; the message names the file and the field."""


class Cores(Strict):
    """CPU cores: named presets plus a bounded free value."""

    presets: dict[Literal["min", "medium", "max"], PositiveInt] = Field(
        default_factory=lambda: {"min": 1},
        description="Preset name -> number of cores.",
    )
    whole_node: bool = Field(False, description="Offer the whole node (an exclusive job).")
    max: PositiveInt = Field(description="Largest number of cores a user may ask for.")
    default: CorePreset | PositiveInt = "min"

    @model_validator(mode="after")
    def _check(self) -> Cores:
        for name, count in self.presets.items():
            if count > self.max:
                raise ValueError(f"preset {name} ({count}) is above max ({self.max})")
        default = self.default
        if isinstance(default, str):
            if default == "whole_node" and not self.whole_node:
                raise ValueError("default is whole_node but whole_node is not offered")
            if default != "whole_node" and default not in self.presets:
                raise ValueError(f"default preset {default!r} is not among the presets")
        elif default > self.max:
            raise ValueError(f"default ({default}) is above max ({self.max})")
        return self


class Memory(Strict):
    """Memory per job, in the units people write ('4G')."""

    min: MemoryMB = 256
    max: MemoryMB
    default: MemoryMB

    @model_validator(mode="after")
    def _check(self) -> Memory:
        if not self.min <= self.default <= self.max:
            raise ValueError("memory must satisfy min <= default <= max")
        return self


class Gpus(Strict):
    """GPUs as a generic resource: type choices and a count."""

    types: list[SchedulerName] = Field(default_factory=list, description="GRES types; empty = untyped.")
    max: PositiveInt
    default: NonNegativeInt = 0

    @model_validator(mode="after")
    def _check(self) -> Gpus:
        if self.default > self.max:
            raise ValueError(f"default ({self.default}) is above max ({self.max})")
        return self


class Walltime(Strict):
    """Run time: suggested choices, a default and a hard maximum."""

    choices: list[WalltimeSeconds] = Field(default_factory=list)
    default: WalltimeSeconds
    max: WalltimeSeconds

    @model_validator(mode="after")
    def _check(self) -> Walltime:
        if not 60 <= self.default <= self.max:
            raise ValueError("walltime must satisfy 1 minute <= default <= max")
        if any(choice > self.max for choice in self.choices):
            raise ValueError("a walltime choice is above max")
        return self


class Resources(Strict):
    """What a scheduler-backed profile lets a user choose."""

    partitions: list[SchedulerName] = Field(min_length=1, description="First is the default.")
    features: list[SchedulerName] = Field(
        default_factory=list,
        description="Architecture features (Slurm --constraint), first is the default.",
    )
    cores: Cores
    memory: Memory
    gpus: Gpus | None = None
    walltime: Walltime


class Environment(Strict):
    """Where the single-user server's Python comes from."""

    id: Identifier
    display_name: PlainText
    description: PlainText = ""
    prefix: AbsolutePath | None = Field(None, description="A Python environment prefix (venv/conda).")
    modules: list[ModuleName] = Field(default_factory=list, description="Environment modules to load.")
    image: AbsolutePath | None = Field(None, description="An Apptainer image to run the server in.")
    apptainer_args: list[SchedulerArg] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Environment:
        if self.apptainer_args and not self.image:
            raise ValueError("apptainer_args given without an image")
        return self


class SlurmSettings(Strict):
    """Admin-only Slurm settings of a profile; users never set these."""

    account: AccountTemplate | None = Field(
        None,
        description="Slurm account; `{proposal}` stands for the chosen proposal. Unset: the backend's "
        "account_template when a proposal is chosen, else Slurm's default account.",
    )
    qos: SchedulerName | None = None
    reservation: SchedulerName | None = None
    extra_args: list[SchedulerArg] = Field(default_factory=list)


def _default_environments() -> list[Environment]:
    return [Environment(id="default", display_name="Default Python")]


class Profile(Strict):
    """One entry of the spawn form: a backend plus the choices it allows."""

    id: Identifier
    display_name: PlainText
    description: PlainText = ""
    backend: Literal["slurm", "local"]
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)
    resources: Resources | None = None
    environments: list[Environment] = Field(default_factory=_default_environments, min_length=1)
    default_url: UrlPath | None = None
    allowed_groups: list[str] = Field(
        default_factory=list, description="JupyterHub groups that may use it (with allowed_proposals: either)."
    )
    allowed_proposals: list[ProposalPattern] = Field(
        default_factory=list,
        description="Proposal id patterns (`2023*`, `MX-*`) whose members may use it, billed to that proposal; "
        "with allowed_groups empty too, everyone may.",
    )

    @model_validator(mode="after")
    def _check(self) -> Profile:
        if self.backend == "slurm" and self.resources is None:
            raise ValueError("a slurm profile needs resources (partitions, cores, memory, walltime)")
        if self.backend == "local" and self.resources is not None:
            raise ValueError("a local profile takes no resources (the local backend cannot bound them)")
        ids = [env.id for env in self.environments]
        if len(ids) != len(set(ids)):
            raise ValueError("environment ids must be unique")
        return self

    def environment(self, env_id: str) -> Environment | None:
        return next((env for env in self.environments if env.id == env_id), None)

    @property
    def restricted(self) -> bool:
        return bool(self.allowed_groups or self.allowed_proposals)

    def proposals_allowed(self, proposals: Iterable[str]) -> list[str]:
        """Those of a user's proposals that open this profile (in the user's order)."""
        return [p for p in proposals if any(fnmatch.fnmatchcase(p, pattern) for pattern in self.allowed_proposals)]

    def allows_group(self, groups: Collection[str]) -> bool:
        return bool(set(groups).intersection(self.allowed_groups))

    def allows(self, groups: Collection[str], proposals: Iterable[str] = ()) -> bool:
        return not self.restricted or self.allows_group(groups) or bool(self.proposals_allowed(proposals))


class ProfileSet(Strict):
    """All profiles of a site, in form order."""

    profiles: list[Profile] = Field(min_length=1)
    default_profile: Identifier | None = None

    # Field validators (not a model validator), so errors name `profiles` / `default_profile`.
    @field_validator("profiles")
    @classmethod
    def _unique_ids(cls, profiles: list[Profile]) -> list[Profile]:
        ids = [profile.id for profile in profiles]
        repeated = sorted({profile_id for profile_id in ids if ids.count(profile_id) > 1})
        if repeated:
            raise ValueError(f"profile ids must be unique (repeated: {', '.join(repeated)})")
        return profiles

    @field_validator("default_profile")
    @classmethod
    def _default_exists(cls, default: str | None, info: ValidationInfo) -> str | None:
        profiles = info.data.get("profiles")  # absent when the profiles themselves are invalid
        if default is not None and profiles is not None and default not in {p.id for p in profiles}:
            raise ValueError(f"default_profile {default!r} is not a profile id")
        return default

    def get(self, profile_id: str) -> Profile | None:
        return next((p for p in self.profiles if p.id == profile_id), None)

    def allowed_for(self, groups: Collection[str], proposals: Sequence[str] = ()) -> list[Profile]:
        return [profile for profile in self.profiles if profile.allows(groups, proposals)]


PROFILES_SHAPE = "with a 'profiles' list"


def parse_profiles(raw: Any, source: str) -> ProfileSet:
    """Validate already-parsed YAML data; errors name the source and every bad field."""
    return parse_model(ProfileSet, raw, source, "profiles", ProfileConfigError, shape=PROFILES_SHAPE)


def load_profiles(path: str | Path) -> ProfileSet:
    """Read and validate a profiles YAML file."""
    return load_model(ProfileSet, path, "profiles", ProfileConfigError, shape=PROFILES_SHAPE)


LOCAL_DEMO = ProfileSet(
    profiles=[
        Profile(
            id="local",
            display_name="Local JupyterLab",
            description="A JupyterLab server on the hub machine.",
            backend="local",
            default_url="/lab",
        )
    ]
)
