"""A Slurm profile: the partitions, cores, memory, GPUs and wall time it offers, and its admin settings.

`SlurmProfile.resolve_request` turns a user's choices into a `SlurmRequest`, the only
resource values the Slurm backend puts into sbatch's argv.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from daas_core.fields import AccountTemplate, SchedulerArg, SchedulerName, Strict

from ...options import BackendRequest, OptionsError, choice
from ...profiles import Profile
from ...resource_models import (
    Cores,
    Gpus,
    Memory,
    Walltime,
    resolve_cores,
    resolve_feature,
    resolve_gpu_count,
    resolve_memory,
    resolve_walltime,
    summary_in_words,
)


class SlurmGpus(Gpus):
    """GPUs as a generic resource (GRES): a count and, optionally, type choices."""

    types: list[SchedulerName] = Field(default_factory=list, description="GRES types; empty = untyped.")


class Resources(Strict):
    """What a Slurm profile lets a user choose."""

    partitions: list[SchedulerName] = Field(min_length=1, description="First is the default.")
    features: list[SchedulerName] = Field(
        default_factory=list,
        description="Architecture features (Slurm --constraint), first is the default.",
    )
    cores: Cores
    memory: Memory
    gpus: SlurmGpus | None = None
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

    @property
    def time_limit(self) -> int | None:
        return self.walltime_seconds

    def summary(self) -> dict[str, Any]:
        return summary_in_words(super().summary(), "slurm", self.memory_mb, self.walltime_seconds)


class SlurmProfile(Profile):
    """A profile whose servers run as Slurm batch jobs."""

    shell_setup: ClassVar[bool] = True  # the batch script runs the profile's prologue and module_use
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

    def resolve_request(self, given: Mapping[str, Any]) -> SlurmRequest:
        resources = self.resources
        partition = choice("partition", given.get("partition", resources.partitions[0]), resources.partitions, self)
        feature = resolve_feature(resources.features, given, self)
        cores, whole_node = resolve_cores(resources.cores, given.get("cores", resources.cores.default), self)
        memory_mb = resolve_memory(resources.memory, given, whole_node)
        gpus = resolve_gpu_count(resources.gpus, given, self)
        gpu_type = None
        if resources.gpus is not None and resources.gpus.types:
            gpu_type = choice("gpu_type", given.get("gpu_type", resources.gpus.types[0]), resources.gpus.types, self)
        elif "gpu_type" in given:
            raise OptionsError("gpu_type", f"is not offered by profile {self.id!r}")
        walltime_seconds = resolve_walltime(resources.walltime, given)

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
