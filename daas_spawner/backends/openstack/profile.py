"""An OpenStack profile: the flavors (sizes) and lifetime it offers, and its admin settings.

Users pick a flavor among the profile's (the form's sizes) and a lifetime up to the profile's
maximum; everything else is the site's (`openstack:`): the image per environment, the network,
security groups, availability zone and extra metadata. `OpenStackProfile.resolve_request` turns
a user's choices into an `OpenStackRequest`, the only values the backend reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, NonNegativeInt, StringConstraints, model_validator

from daas_core.fields import Identifier, PlainText, Strict
from daas_core.quantities import format_walltime

from ...options import BackendRequest, choice
from ...profiles import Profile
from ...resource_models import Walltime, resolve_walltime

# Names and ids of flavors, images, networks, security groups and zones: what Nova and Glance accept,
# without spaces, quotes or control characters (they appear in API bodies, logs and the form).
CloudName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,254}$")]
MetadataKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$")]
MetadataValue = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{0,255}$")]


class Flavor(Strict):
    """One size of a profile: a Nova flavor the site chose."""

    name: CloudName = Field(description="The flavor's name (or id) in Nova.")
    display_name: PlainText | None = Field(None, description="What the form calls it; unset: the flavor's name.")
    gpus: NonNegativeInt | None = Field(
        None,
        description="GPUs the flavor gives, for the form; unset: read from its extra specs "
        "(resources:VGPU, resources:PGPU, pci_passthrough:alias).",
    )


class OpenStackSettings(Strict):
    """Admin-only OpenStack settings of a profile (key `openstack:`); users never set these."""

    images: dict[Identifier, CloudName] = Field(
        description="Environment id -> Glance image (name or id); every environment of the profile needs one. "
        "The image carries the environment: nothing is installed at boot."
    )
    network: CloudName = Field(
        "auto",
        description="The servers' network (its id), or Nova's 'auto' (the project's network, allocated "
        "if needed) or 'none'. The hub must reach the servers on it.",
    )
    security_groups: list[CloudName] = Field(
        default_factory=list, description="Security groups by name; none: the project's default."
    )
    availability_zone: CloudName | None = Field(None, description="Where the servers run; unset: Nova chooses.")
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict,
        description="Extra metadata on every server (e.g. cost centre); visible to the project: no secrets. "
        "Keys starting with 'daas' are the backend's.",
    )

    @model_validator(mode="after")
    def _check(self) -> OpenStackSettings:
        taken = [key for key in self.metadata if key.lower().startswith("daas")]
        if taken:
            raise ValueError(f"metadata keys {', '.join(taken)}: keys starting with 'daas' are the backend's")
        if self.network == "none" and self.security_groups:
            raise ValueError("security_groups need a network, and network is 'none'")
        return self


class OpenStackResources(Strict):
    """What an OpenStack profile lets a user choose: one of its flavors, and the server's lifetime."""

    flavors: list[Flavor] = Field(min_length=1, description="The sizes offered, the first is the default.")
    walltime: Walltime = Field(description="The server's lifetime; the hub deletes it when it ends.")

    @model_validator(mode="after")
    def _unique_flavors(self) -> OpenStackResources:
        names = [flavor.name for flavor in self.flavors]
        if len(names) != len(set(names)):
            raise ValueError("flavor names must be unique within a profile")
        return self


@dataclass(frozen=True)
class OpenStackRequest(BackendRequest):
    """One server's flavor and lifetime, bounded by its profile, and the profile's admin settings."""

    openstack: OpenStackSettings
    flavor: str
    walltime_seconds: int

    @property
    def time_limit(self) -> int | None:
        return self.walltime_seconds

    def summary(self) -> dict[str, Any]:
        return {"flavor": self.flavor, "walltime": format_walltime(self.walltime_seconds)}


class OpenStackProfile(Profile):
    """A profile whose servers are OpenStack virtual machines."""

    option_fields: ClassVar[tuple[str, ...]] = ("flavor", "walltime")
    form_template: ClassVar[str | None] = "openstack/options.html"
    availability_template: ClassVar[str | None] = "openstack/availability.html"

    backend: Literal["openstack"]
    openstack: OpenStackSettings
    resources: OpenStackResources

    @model_validator(mode="after")
    def _check(self) -> OpenStackProfile:
        env_ids = [env.id for env in self.environments]
        missing = [env_id for env_id in env_ids if env_id not in self.openstack.images]
        if missing:
            raise ValueError(f"openstack.images has no image for environment {', '.join(missing)}")
        unused = [env_id for env_id in self.openstack.images if env_id not in env_ids]
        if unused:
            raise ValueError(f"openstack.images names no environment of this profile: {', '.join(unused)}")
        apptainer = [env.id for env in self.environments if env.image or env.apptainer_args or env.modules]
        if apptainer:
            raise ValueError(
                f"environment {', '.join(apptainer)}: image, apptainer_args and modules are for Slurm; "
                "a server's image is openstack.images[<environment id>]"
            )
        return self

    def resolve_request(self, given: Mapping[str, Any]) -> OpenStackRequest:
        names = [flavor.name for flavor in self.resources.flavors]
        return OpenStackRequest(
            openstack=self.openstack,
            flavor=choice("flavor", given.get("flavor", names[0]), names, self),
            walltime_seconds=resolve_walltime(self.resources.walltime, given),
        )
