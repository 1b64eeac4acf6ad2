"""A sandbox profile: the admin lists greetings, the user picks one (the backend's own option)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from daas_core.fields import Identifier, Strict
from daas_spawner.options import BackendRequest, choice
from daas_spawner.profiles import Profile


class SandboxSettings(Strict):
    """What the admin offers."""

    greetings: list[Identifier] = Field(min_length=1, description="Greetings a user may choose, first the default.")


@dataclass(frozen=True)
class SandboxRequest(BackendRequest):
    greeting: str


class SandboxProfile(Profile):
    """A profile whose servers are processes the sandbox backend starts."""

    option_fields: ClassVar[tuple[str, ...]] = ("greeting",)
    form_template: ClassVar[str | None] = "sandbox/options.html"
    availability_template: ClassVar[str | None] = "sandbox/availability.html"

    backend: Literal["sandbox"]
    sandbox: SandboxSettings

    def resolve_request(self, given: Mapping[str, Any]) -> SandboxRequest:
        greetings = self.sandbox.greetings
        return SandboxRequest(greeting=choice("greeting", given.get("greeting", greetings[0]), greetings, self))
