"""A Kubernetes profile: the cores, memory, GPUs, wall time and architectures it offers, and its admin settings.

Resources are written as in Slurm profiles (daas_spawner.resource_models); the admin-only
`kubernetes:` settings say where and how the pod runs (image per environment, namespace, node
selectors, tolerations). `KubernetesProfile.resolve_request` turns a user's choices into a
`KubernetesRequest`, the only resource values the pod builder reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, NonNegativeInt, field_validator, model_validator

from daas_core.fields import Identifier, SchedulerName, Strict

from ...options import BackendRequest
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
from .names import (
    PROPOSAL_PLACEHOLDER,
    DnsName,
    ImageRef,
    LabelKey,
    LabelValue,
    NamespaceTemplate,
    ResourceName,
    namespace_for,
)


def _default_feature_selectors() -> dict[str, dict[str, str]]:
    return {
        "x86_64": {"kubernetes.io/arch": "amd64"},
        "power9": {"kubernetes.io/arch": "ppc64le"},
        "aarch64": {"kubernetes.io/arch": "arm64"},
    }


class Toleration(Strict):
    """Lets the pod onto nodes with a matching taint (e.g. GPU nodes kept for GPU work)."""

    key: LabelKey | None = Field(None, description="The taint's key; none (with Exists) tolerates every taint.")
    operator: Literal["Exists", "Equal"] = Field("Equal", description="Equal: the taint's value must match.")
    value: LabelValue | None = Field(None, description="The taint's value (Equal only).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="The taint effect tolerated; none: all effects."
    )
    toleration_seconds: NonNegativeInt | None = Field(
        None, description="How long the pod stays on a node that gets the taint (NoExecute only)."
    )

    @model_validator(mode="after")
    def _check(self) -> Toleration:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("an Exists toleration takes no value")
        if self.operator == "Equal" and self.key is None:
            raise ValueError("an Equal toleration needs a key (to tolerate every taint, use operator Exists)")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("toleration_seconds is only for effect NoExecute")
        return self

    def as_api(self) -> dict[str, Any]:
        """The toleration in the API's shape (camelCase, unset fields left out)."""
        fields = {
            "key": self.key,
            "operator": self.operator,
            "value": self.value,
            "effect": self.effect,
            "tolerationSeconds": self.toleration_seconds,
        }
        return {name: value for name, value in fields.items() if value is not None}


class KubernetesSettings(Strict):
    """Admin-only Kubernetes settings of a profile (key `kubernetes:`); users never set these."""

    images: dict[Identifier, ImageRef] = Field(
        description="Environment id -> container image; every environment of the profile needs one "
        "(users pick an environment, never an image)."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        None, description="Unset: Kubernetes' default (Always for :latest, else IfNotPresent)."
    )
    namespace: NamespaceTemplate | None = Field(
        None,
        description="Where the pods run; `{proposal}` stands for the chosen proposal (one namespace per "
        "proposal, lower-cased). Unset: the backend's namespace.",
    )
    node_selector: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Node labels every pod of this profile requires."
    )
    tolerations: list[Toleration] = Field(default_factory=list, description="Taints the pods tolerate.")
    priority_class: DnsName | None = Field(None, description="The pods' PriorityClass name.")
    gpu_resource: ResourceName = Field(
        "nvidia.com/gpu",
        description="The extended resource a GPU is, e.g. a MIG profile such as nvidia.com/mig-1g.5gb.",
    )
    feature_selectors: dict[SchedulerName, dict[LabelKey, LabelValue]] = Field(
        default_factory=_default_feature_selectors,
        description="Architecture feature a user may pick -> the node labels it selects.",
    )
    cpu_request_ratio: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of the chosen cores a pod requests (is guaranteed); its limit is all of them. "
        "1: requests equal limits (Guaranteed QoS, like a Slurm allocation); below 1 lets more interactive "
        "servers share a node's cores (Burstable QoS). Memory is always requested in full.",
    )

    def namespace_for(self, proposal: str | None, default: str) -> str:
        """The pod's namespace: `default` (the backend's) unless the profile names one, per proposal or not."""
        return default if self.namespace is None else namespace_for(self.namespace, proposal)

    def node_selector_for(self, feature: str | None) -> dict[str, str]:
        """The profile's node selector plus the chosen architecture's labels."""
        return self.node_selector | (self.feature_selectors[feature] if feature is not None else {})


class KubernetesResources(Strict):
    """What a Kubernetes profile lets a user choose (the same grammar as a Slurm profile's, where shared)."""

    cores: Cores
    memory: Memory
    gpus: Gpus | None = Field(None, description="GPUs per pod, as kubernetes.gpu_resource.")
    walltime: Walltime = Field(description="Run time; the pod's activeDeadlineSeconds.")
    features: list[SchedulerName] = Field(
        default_factory=list,
        description="Architecture choices, first is the default; each a key of kubernetes.feature_selectors.",
    )

    @field_validator("gpus", mode="before")
    @classmethod
    def _no_gpu_types(cls, value: Any) -> Any:
        if isinstance(value, dict) and "types" in value:
            raise ValueError(
                "Kubernetes GPUs have no types: the GPU is the extended resource kubernetes.gpu_resource "
                "(e.g. nvidia.com/mig-1g.5gb); make one profile per kind of GPU"
            )
        return value


@dataclass(frozen=True)
class KubernetesRequest(BackendRequest):
    """One pod's resources, bounded by its profile, and the profile's admin settings."""

    kubernetes: KubernetesSettings
    cores: int | None  # None: the whole node (the backend fills in the node's allocatable)
    whole_node: bool
    memory_mb: int | None  # None: the whole node's
    gpus: int
    feature: str | None
    walltime_seconds: int

    @property
    def time_limit(self) -> int | None:
        return self.walltime_seconds

    def summary(self) -> dict[str, Any]:
        return summary_in_words(super().summary(), "kubernetes", self.memory_mb, self.walltime_seconds)


class KubernetesProfile(Profile):
    """A profile whose servers run as Kubernetes pods."""

    option_fields: ClassVar[tuple[str, ...]] = ("cores", "memory", "gpus", "walltime", "feature")
    # The form's Advanced inputs that, filled in, override the Simple choice (as for Slurm).
    form_overrides: ClassVar[Mapping[str, str]] = {"cores_custom": "cores", "walltime_custom": "walltime"}
    form_template: ClassVar[str | None] = "kubernetes/options.html"
    availability_template: ClassVar[str | None] = "kubernetes/availability.html"

    backend: Literal["kubernetes"]
    kubernetes: KubernetesSettings
    resources: KubernetesResources

    @model_validator(mode="before")
    @classmethod
    def _needs_resources(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("resources") is None:
            raise ValueError("a kubernetes profile needs resources (cores, memory, walltime)")
        return data

    @model_validator(mode="after")
    def _check(self) -> KubernetesProfile:
        env_ids = [env.id for env in self.environments]
        missing = [env_id for env_id in env_ids if env_id not in self.kubernetes.images]
        if missing:
            raise ValueError(f"kubernetes.images has no image for environment {', '.join(missing)}")
        unused = [env_id for env_id in self.kubernetes.images if env_id not in env_ids]
        if unused:
            raise ValueError(f"kubernetes.images names no environment of this profile: {', '.join(unused)}")
        apptainer = [env.id for env in self.environments if env.image or env.apptainer_args]
        if apptainer:
            raise ValueError(
                f"environment {', '.join(apptainer)}: image and apptainer_args are for Apptainer; "
                "a pod's image is kubernetes.images[<environment id>]"
            )
        unknown = [f for f in self.resources.features if f not in self.kubernetes.feature_selectors]
        if unknown:
            raise ValueError(
                f"resources.features {', '.join(unknown)} not in kubernetes.feature_selectors "
                f"({', '.join(self.kubernetes.feature_selectors) or 'none'})"
            )
        return self

    @property
    def requires_proposal(self) -> bool:
        """A profile with a namespace per proposal cannot start a pod for someone who has none."""
        return PROPOSAL_PLACEHOLDER in (self.kubernetes.namespace or "")

    def resolve_request(self, given: Mapping[str, Any]) -> KubernetesRequest:
        resources = self.resources
        feature = resolve_feature(resources.features, given, self)
        cores, whole_node = resolve_cores(resources.cores, given.get("cores", resources.cores.default), self)
        return KubernetesRequest(
            kubernetes=self.kubernetes,
            cores=cores,
            whole_node=whole_node,
            memory_mb=resolve_memory(resources.memory, given, whole_node),
            gpus=resolve_gpu_count(resources.gpus, given, self),
            feature=feature,
            walltime_seconds=resolve_walltime(resources.walltime, given),
        )
