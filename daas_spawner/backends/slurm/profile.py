"""A Slurm profile: the partitions, cores, memory, GPUs and wall time it offers, and its admin settings.

`SlurmProfile.resolve_request` turns a user's choices into a `SlurmRequest`, the only
resource values the Slurm backend puts into sbatch's argv.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from daas_core.fields import AccountTemplate, MemoryMB, SchedulerArg, SchedulerName, Strict, WalltimeSeconds
from daas_core.quantities import format_memory, format_walltime, parse_memory_mb, parse_walltime_seconds

from ...options import BackendRequest, OptionsError, choice, in_range, quantity, whole_number
from ...profiles import Profile

CorePreset = Literal["min", "medium", "max", "whole_node"]
CORE_PRESETS: tuple[CorePreset, ...] = ("min", "medium", "max", "whole_node")


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
    """What a Slurm profile lets a user choose."""

    partitions: list[SchedulerName] = Field(min_length=1, description="First is the default.")
    features: list[SchedulerName] = Field(
        default_factory=list,
        description="Architecture features (Slurm --constraint), first is the default.",
    )
    cores: Cores
    memory: Memory
    gpus: Gpus | None = None
    walltime: Walltime


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


@dataclass(frozen=True)
class SlurmRequest(BackendRequest):
    """One job's resources, bounded by its profile, and the profile's admin settings."""

    slurm: SlurmSettings
    partition: str
    feature: str | None
    cores: int | None  # None: the whole node
    whole_node: bool
    memory_mb: int | None  # None: the whole node's
    gpu_type: str | None
    gpus: int
    walltime_seconds: int

    def summary(self) -> dict[str, Any]:
        data = super().summary()
        del data["slurm"]  # the admin's settings, not the user's choices
        if self.memory_mb is not None:
            data["memory"] = format_memory(self.memory_mb)
        data["walltime"] = format_walltime(self.walltime_seconds)
        return data


class SlurmProfile(Profile):
    """A profile whose servers run as Slurm batch jobs."""

    option_fields: ClassVar[tuple[str, ...]] = (
        "partition",
        "cores",
        "memory",
        "gpus",
        "gpu_type",
        "walltime",
        "feature",
    )
    # The form's Advanced inputs that, filled in, override the Simple choice.
    form_overrides: ClassVar[Mapping[str, str]] = {"cores_custom": "cores", "walltime_custom": "walltime"}
    form_template: ClassVar[str | None] = "slurm/options.html"
    availability_template: ClassVar[str | None] = "slurm/availability.html"

    backend: Literal["slurm"]
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)
    resources: Resources

    @model_validator(mode="before")
    @classmethod
    def _needs_resources(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("resources") is None:
            raise ValueError("a slurm profile needs resources (partitions, cores, memory, walltime)")
        return data

    @property
    def requires_proposal(self) -> bool:
        """A profile billed to `{proposal}` cannot start a job for someone who has none."""
        return "{proposal}" in (self.slurm.account or "")

    def _cores(self, value: Any) -> tuple[int | None, bool]:
        cores = self.resources.cores
        if isinstance(value, str) and value in CORE_PRESETS:
            if value == "whole_node":
                if not cores.whole_node:
                    raise OptionsError("cores", f"whole_node is not offered by profile {self.id!r}")
                return None, True
            if value not in cores.presets:
                raise OptionsError("cores", f"preset {value!r} is not offered by profile {self.id!r}")
            return cores.presets[value], False  # type: ignore[index]
        return in_range("cores", whole_number("cores", value), 1, cores.max), False

    def resolve_request(self, given: Mapping[str, Any]) -> SlurmRequest:
        resources = self.resources
        partition = choice("partition", given.get("partition", resources.partitions[0]), resources.partitions, self)
        feature = None
        if resources.features:
            feature = choice("feature", given.get("feature", resources.features[0]), resources.features, self)
        elif "feature" in given:
            raise OptionsError("feature", f"is not offered by profile {self.id!r}")

        cores, whole_node = self._cores(given.get("cores", resources.cores.default))

        memory_mb = None
        if not whole_node:
            memory = resources.memory
            memory_mb = memory.default  # already MiB; only a user's value is parsed
            if "memory" in given:
                memory_mb = quantity("memory", given["memory"], parse_memory_mb)
            in_range("memory", memory_mb, memory.min, memory.max, shown=format_memory(memory_mb))
        elif "memory" in given:
            raise OptionsError("memory", "cannot be set with whole_node (the job gets all the node's memory)")

        gpus, gpu_type = 0, None
        if resources.gpus is not None:
            gpus = in_range(
                "gpus", whole_number("gpus", given.get("gpus", resources.gpus.default)), 0, resources.gpus.max
            )
            if resources.gpus.types:
                gpu_type = choice(
                    "gpu_type", given.get("gpu_type", resources.gpus.types[0]), resources.gpus.types, self
                )
            elif "gpu_type" in given:
                raise OptionsError("gpu_type", f"is not offered by profile {self.id!r}")
        else:
            for key in ("gpus", "gpu_type"):
                if key in given:
                    raise OptionsError(key, f"is not offered by profile {self.id!r}")

        walltime = resources.walltime
        # The profile's default is already in seconds; only a user's value is parsed (a number there means minutes).
        walltime_seconds = walltime.default
        if "walltime" in given:
            walltime_seconds = quantity("walltime", given["walltime"], parse_walltime_seconds)
        in_range("walltime", walltime_seconds, 60, walltime.max, shown=format_walltime(walltime_seconds))

        return SlurmRequest(
            slurm=self.slurm,
            partition=partition,
            feature=feature,
            cores=cores,
            whole_node=whole_node,
            memory_mb=memory_mb,
            gpu_type=gpu_type if gpus else None,
            gpus=gpus,
            walltime_seconds=walltime_seconds,
        )
