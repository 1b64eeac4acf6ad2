"""A local profile: a server process on the hub machine; users choose no resources (nothing could bound them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import model_validator

from ...options import BackendRequest
from ...profiles import Profile


@dataclass(frozen=True)
class LocalRequest(BackendRequest):
    """A local server takes nothing beyond the common options."""


class LocalProfile(Profile):
    """A profile whose servers run as processes on the hub machine."""

    backend: Literal["local"]

    @model_validator(mode="before")
    @classmethod
    def _no_resources(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("resources") is not None:
            raise ValueError("a local profile takes no resources (the local backend cannot bound them)")
        return data

    def resolve_request(self, given: Mapping[str, Any]) -> LocalRequest:
        return LocalRequest()
