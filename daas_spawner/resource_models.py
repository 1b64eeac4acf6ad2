"""The resource bounds batch-like backends share: cores, memory, GPUs and wall time, and how a choice is checked.

Slurm and Kubernetes profiles write these the same way (`cores: {presets: ..., max: 8}`,
`memory: {max: 14G}`), so a site moving a profile from one backend to the other keeps its
numbers, and a user's '4G' or '1:00:00' means the same everywhere. Each `resolve_*` checks one
user option against its bounds and raises options.OptionsError naming that option; backends
never import each other, so what they share lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from daas_core.fields import MemoryMB, Strict, WalltimeSeconds
from daas_core.quantities import format_memory, format_walltime, parse_memory_mb, parse_walltime_seconds

from .options import OptionsError, choice, in_range, quantity, whole_number
from .profiles import Profile

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
    """A number of GPUs: a bound and a default (what kind of GPU is the backend's business)."""

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


def resolve_cores(cores: Cores, value: Any, profile: Profile) -> tuple[int | None, bool]:
    """(cores, whole_node) for a preset name or a number of cores; None cores: the whole node."""
    if isinstance(value, str) and value in CORE_PRESETS:
        if value == "whole_node":
            if not cores.whole_node:
                raise OptionsError("cores", f"whole_node is not offered by profile {profile.id!r}")
            return None, True
        if value not in cores.presets:
            raise OptionsError("cores", f"preset {value!r} is not offered by profile {profile.id!r}")
        return cores.presets[value], False  # type: ignore[index]
    return in_range("cores", whole_number("cores", value), 1, cores.max), False


def resolve_memory(memory: Memory, given: Mapping[str, Any], whole_node: bool) -> int | None:
    """MiB within the bounds; None for a whole node, which gets all its memory (giving one then is an error)."""
    if whole_node:
        if "memory" in given:
            raise OptionsError("memory", "cannot be set with whole_node (the job gets all the node's memory)")
        return None
    memory_mb = memory.default  # already MiB; only a user's value is parsed
    if "memory" in given:
        memory_mb = quantity("memory", given["memory"], parse_memory_mb)
    return in_range("memory", memory_mb, memory.min, memory.max, shown=format_memory(memory_mb))


def resolve_gpu_count(gpus: Gpus | None, given: Mapping[str, Any], profile: Profile) -> int:
    """0..max GPUs; asking for any from a profile without GPUs is an error."""
    if gpus is None:
        if "gpus" in given:
            raise OptionsError("gpus", f"is not offered by profile {profile.id!r}")
        return 0
    return in_range("gpus", whole_number("gpus", given.get("gpus", gpus.default)), 0, gpus.max)


def resolve_walltime(walltime: Walltime, given: Mapping[str, Any]) -> int:
    """Seconds between a minute and the maximum."""
    # The profile's default is already in seconds; only a user's value is parsed (a number there means minutes).
    seconds = walltime.default
    if "walltime" in given:
        seconds = quantity("walltime", given["walltime"], parse_walltime_seconds)
    return in_range("walltime", seconds, 60, walltime.max, shown=format_walltime(seconds))


def resolve_feature(features: list[str], given: Mapping[str, Any], profile: Profile) -> str | None:
    """One of the profile's architecture features (the first by default); None when it offers none."""
    if features:
        return choice("feature", given.get("feature", features[0]), features, profile)
    if "feature" in given:
        raise OptionsError("feature", f"is not offered by profile {profile.id!r}")
    return None


def summary_in_words(
    data: dict[str, Any], admin_key: str, memory_mb: int | None, walltime_seconds: int
) -> dict[str, Any]:
    """A request's summary as people read it: the admin's settings left out, memory and wall time in words."""
    del data[admin_key]
    if memory_mb is not None:
        data["memory"] = format_memory(memory_mb)
    data["walltime"] = format_walltime(walltime_seconds)
    return data
