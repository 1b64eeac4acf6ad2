"""The one options model: every user-supplied value passes through `resolve_options`.

Form posts and REST bodies (`POST /hub/api/users/{name}/server`, which JupyterHub writes
straight into `user_options`) arrive here unchanged. The result, `ResolvedOptions`, is
typed, bounded by the chosen profile, complete (defaults filled in) and contains no free
text: every string in it is either a choice taken from the profile or rendered from a
number. Backends only ever see `ResolvedOptions`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from daas_core.quantities import format_memory, format_walltime, parse_memory_mb, parse_walltime_seconds

from .profiles import CORE_PRESETS, Environment, Profile, ProfileSet

OPTION_FIELDS = (
    "profile",
    "proposal",
    "partition",
    "cores",
    "memory",
    "gpus",
    "gpu_type",
    "walltime",
    "feature",
    "environment",
)
_DIGITS = re.compile(r"[0-9]{1,9}")
_MAX_TEXT = 128


class OptionsError(ValueError):
    """A user option that cannot be accepted; `field` names it for the form and the 400 body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class UserAccess:
    """What decides a user's choices besides the profiles: groups, proposals, the server's own proposal."""

    groups: frozenset[str] = frozenset()
    proposals: tuple[str, ...] = ()  # the user's proposal ids, in the order the authenticator gave
    server_proposal: str | None = None  # set for a named server that is one proposal's (e.g. "proposal-20231234")


@dataclass(frozen=True)
class ResolvedOptions:
    """Validated, complete options for one server; the only input backends get."""

    profile: Profile
    environment: Environment
    proposal: str | None = None
    partition: str | None = None
    feature: str | None = None
    cores: int | None = None
    whole_node: bool = False
    memory_mb: int | None = None
    gpu_type: str | None = None
    gpus: int = 0
    walltime_seconds: int | None = None

    @property
    def backend(self) -> str:
        return self.profile.backend

    def summary(self) -> dict[str, Any]:
        """JSON-able description (for state, logs and the server's environment)."""
        data = asdict(self)
        data["profile"] = self.profile.id
        data["environment"] = self.environment.id
        if self.memory_mb is not None:
            data["memory"] = format_memory(self.memory_mb)
        if self.walltime_seconds is not None:
            data["walltime"] = format_walltime(self.walltime_seconds)
        return {key: value for key, value in data.items() if value is not None}


def _shown(value: Any) -> str:
    """A user value quoted for an error message, cut short so messages stay readable."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise OptionsError(field, f"must be a string, not {type(value).__name__}")
    if len(value) > _MAX_TEXT:
        raise OptionsError(field, f"is longer than {_MAX_TEXT} characters")
    return value


def _choice(field: str, value: Any, choices: list[str], profile: Profile) -> str:
    text = _text(field, value)
    if text not in choices:
        raise OptionsError(
            field,
            f"{_shown(text)} is not offered by profile {profile.id!r} (choose from: {', '.join(choices)})",
        )
    return text


def _integer(field: str, value: Any) -> int:
    """Accept a JSON integer or a string of digits (forms send strings); nothing else."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise OptionsError(field, f"must be a whole number, not {type(value).__name__}")
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise OptionsError(field, f"{_shown(value)} is not a whole number")
        return int(value)
    if value < 0 or value > 10**9:
        raise OptionsError(field, f"{value} is out of range")
    return value


def _in_range(field: str, value: int, low: int, high: int, shown: str | None = None) -> int:
    if not low <= value <= high:
        raise OptionsError(field, f"{shown or value} is outside the allowed range {low}..{high}")
    return value


def _quantity(field: str, value: Any, parse) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise OptionsError(field, f"must be a string or a number, not {type(value).__name__}")
    if isinstance(value, str) and len(value) > 32:
        raise OptionsError(field, "is too long")
    try:
        return parse(value)
    except ValueError as err:
        raise OptionsError(field, str(err)) from None


def _choose_profile(requested: Any, profiles: ProfileSet, user: UserAccess) -> Profile:
    allowed = profiles.allowed_for(user.groups, user.proposals)
    if requested is None:
        if profiles.default_profile and any(p.id == profiles.default_profile for p in allowed):
            return profiles.get(profiles.default_profile)  # type: ignore[return-value]
        if len(allowed) == 1:
            return allowed[0]
        raise OptionsError("profile", "is required (choose from: " + ", ".join(p.id for p in allowed) + ")")
    profile_id = _text("profile", requested)
    profile = next((p for p in allowed if p.id == profile_id), None)
    if profile is None:
        # Same answer for unknown and forbidden profiles: do not reveal what exists.
        raise OptionsError("profile", f"{_shown(profile_id)} is not available to you")
    return profile


def _via_proposals_only(profile: Profile, user: UserAccess) -> bool:
    return bool(profile.allowed_proposals) and not profile.allows_group(user.groups)


def proposal_choices(profile: Profile, user: UserAccess) -> tuple[list[str], str | None]:
    """The user's proposals this profile may work for, and the one a proposal-named server is fixed to."""
    if _via_proposals_only(profile, user):
        candidates = profile.proposals_allowed(user.proposals)
    else:
        candidates = list(user.proposals)
    return candidates, user.server_proposal


def _proposal(requested: Any, profile: Profile, user: UserAccess) -> str | None:
    """The proposal this server works for (and its job is billed to): one of the user's own.

    A named server called after one of the user's proposals is that proposal's server. A
    profile open to the user only through its proposal patterns takes only matching ones.
    """
    candidates, fixed = proposal_choices(profile, user)
    chosen = fixed
    if requested is not None:
        chosen = _text("proposal", requested)
        if chosen not in user.proposals:
            raise OptionsError("proposal", f"{_shown(chosen)} is not one of your proposals")
        if fixed is not None and chosen != fixed:
            raise OptionsError("proposal", f"this server is for proposal {fixed}, not {_shown(chosen)}")
    if chosen is not None and chosen not in candidates:
        raise OptionsError("proposal", f"proposal {chosen} may not use profile {profile.id!r}")
    if chosen is None and candidates:
        chosen = candidates[0]
    if chosen is None and (_via_proposals_only(profile, user) or "{proposal}" in (profile.slurm.account or "")):
        raise OptionsError("proposal", f"profile {profile.id!r} is billed to a proposal, and you have none")
    return chosen


def _cores(value: Any, profile: Profile) -> tuple[int | None, bool]:
    cores = profile.resources.cores  # type: ignore[union-attr]
    if isinstance(value, str) and value in CORE_PRESETS:
        if value == "whole_node":
            if not cores.whole_node:
                raise OptionsError("cores", f"whole_node is not offered by profile {profile.id!r}")
            return None, True
        if value not in cores.presets:
            raise OptionsError("cores", f"preset {value!r} is not offered by profile {profile.id!r}")
        return cores.presets[value], False
    return _in_range("cores", _integer("cores", value), 1, cores.max), False


def resolve_options(raw: Any, profiles: ProfileSet, user: UserAccess) -> ResolvedOptions:
    """Check raw user options against the profiles this user may use; fill in defaults.

    Raises OptionsError naming the first offending field. `None` and empty strings mean
    "not given" (a form's empty field, a REST body of only {"profile": ...}).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise OptionsError("user_options", "must be an object")
    for key in raw:
        if key not in OPTION_FIELDS:
            raise OptionsError(_shown(key) if not isinstance(key, str) else key[:64], "is not a known option")
    given = {key: value for key, value in raw.items() if value is not None and value != ""}

    profile = _choose_profile(given.get("profile"), profiles, user)
    proposal = _proposal(given.get("proposal"), profile, user)
    env_ids = [env.id for env in profile.environments]
    environment = profile.environment(_choice("environment", given.get("environment", env_ids[0]), env_ids, profile))
    resources = profile.resources
    if resources is None:
        offered = [key for key in given if key not in ("profile", "proposal", "environment")]
        if offered:
            raise OptionsError(offered[0], f"is not offered by profile {profile.id!r}")
        return ResolvedOptions(profile=profile, environment=environment, proposal=proposal)  # type: ignore[arg-type]

    partition = _choice("partition", given.get("partition", resources.partitions[0]), resources.partitions, profile)
    feature = None
    if resources.features:
        feature = _choice("feature", given.get("feature", resources.features[0]), resources.features, profile)
    elif "feature" in given:
        raise OptionsError("feature", f"is not offered by profile {profile.id!r}")

    cores, whole_node = _cores(given.get("cores", resources.cores.default), profile)

    memory_mb = None
    if not whole_node:
        memory = resources.memory
        memory_mb = memory.default  # already MiB; only a user's value is parsed
        if "memory" in given:
            memory_mb = _quantity("memory", given["memory"], parse_memory_mb)
        _in_range(
            "memory",
            memory_mb,
            memory.min,
            memory.max,
            shown=format_memory(memory_mb),
        )
    elif "memory" in given:
        raise OptionsError("memory", "cannot be set with whole_node (the job gets all the node's memory)")

    gpus, gpu_type = 0, None
    if resources.gpus is not None:
        gpus = _in_range("gpus", _integer("gpus", given.get("gpus", resources.gpus.default)), 0, resources.gpus.max)
        if resources.gpus.types:
            gpu_type = _choice(
                "gpu_type", given.get("gpu_type", resources.gpus.types[0]), resources.gpus.types, profile
            )
        elif "gpu_type" in given:
            raise OptionsError("gpu_type", f"is not offered by profile {profile.id!r}")
    else:
        for key in ("gpus", "gpu_type"):
            if key in given:
                raise OptionsError(key, f"is not offered by profile {profile.id!r}")

    walltime = resources.walltime
    # The profile's default is already in seconds; only a user's value is parsed (a number there means minutes).
    walltime_seconds = walltime.default
    if "walltime" in given:
        walltime_seconds = _quantity("walltime", given["walltime"], parse_walltime_seconds)
    _in_range("walltime", walltime_seconds, 60, walltime.max, shown=format_walltime(walltime_seconds))

    return ResolvedOptions(
        profile=profile,
        environment=environment,  # type: ignore[arg-type]
        proposal=proposal,
        partition=partition,
        feature=feature,
        cores=cores,
        whole_node=whole_node,
        memory_mb=memory_mb,
        gpu_type=gpu_type if gpus else None,
        gpus=gpus,
        walltime_seconds=walltime_seconds,
    )
