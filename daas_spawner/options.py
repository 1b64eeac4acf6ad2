"""The one options model: every user-supplied value passes through `resolve_options`.

Form posts and REST bodies (`POST /hub/api/users/{name}/server`, which JupyterHub writes
straight into `user_options`) arrive here unchanged. The result, `ResolvedOptions`, is
typed, bounded by the chosen profile, complete (defaults filled in) and contains no free
text: every string in it is either a choice taken from the profile or rendered from a
number. This module checks what every backend shares (known keys, the profile, the
proposal, the environment); the chosen profile's backend resolves the rest into its own
typed request (`Profile.resolve_request`), using the checks below. Backends only ever see
`ResolvedOptions`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

from .profiles import DESKTOP_URL, Environment, Profile, ProfileSet

COMMON_FIELDS = ("profile", "proposal", "environment")
_DIGITS = re.compile(r"[0-9]{1,9}")
_MAX_TEXT = 128


def option_fields() -> tuple[str, ...]:
    """Every user option some registered backend takes, the common ones first."""
    from .backends.registry import profile_classes  # here: the registry imports every backend

    names = list(COMMON_FIELDS)
    for profile_class in profile_classes().values():
        names += [name for name in profile_class.option_fields if name not in names]
    return tuple(names)


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
class BackendRequest:
    """What a backend is asked for, beyond the common options: each backend's resolver subclasses it (frozen)."""

    def summary(self) -> dict[str, Any]:
        """JSON-able, for state, logs and the server's environment; None values left out."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @property
    def time_limit(self) -> int | None:
        """Seconds the backend itself lets the server run (a job's wall time), None: no limit of its own."""
        return None


R = TypeVar("R", bound=BackendRequest)


@dataclass(frozen=True)
class ResolvedOptions(Generic[R]):
    """Validated, complete options for one server; the only input backends get."""

    profile: Profile
    environment: Environment
    request: R
    proposal: str | None = None

    @property
    def backend(self) -> str:
        return self.profile.backend

    @property
    def default_url(self) -> str | None:
        """Where the server opens: a desktop environment's desktop, else the profile's page."""
        return DESKTOP_URL if self.environment.kind == "desktop" else self.profile.default_url

    def summary(self) -> dict[str, Any]:
        """JSON-able description (for state, logs and the server's environment)."""
        data: dict[str, Any] = {"profile": self.profile.id, "environment": self.environment.id}
        if self.proposal is not None:
            data["proposal"] = self.proposal
        return data | self.request.summary()


def _shown(value: Any) -> str:
    """A user value quoted for an error message, cut short so messages stay readable."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def text(field: str, value: Any) -> str:
    """A string of bounded length, or OptionsError."""
    if not isinstance(value, str):
        raise OptionsError(field, f"must be a string, not {type(value).__name__}")
    if len(value) > _MAX_TEXT:
        raise OptionsError(field, f"is longer than {_MAX_TEXT} characters")
    return value


def choice(field: str, value: Any, choices: list[str], profile: Profile) -> str:
    """One of the profile's choices, or OptionsError listing them."""
    given = text(field, value)
    if given not in choices:
        raise OptionsError(
            field,
            f"{_shown(given)} is not offered by profile {profile.id!r} (choose from: {', '.join(choices)})",
        )
    return given


def whole_number(field: str, value: Any) -> int:
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


def in_range(field: str, value: int, low: int, high: int, shown: str | None = None) -> int:
    if not low <= value <= high:
        raise OptionsError(field, f"{shown or value} is outside the allowed range {low}..{high}")
    return value


def quantity(field: str, value: Any, parse: Callable[[Any], int]) -> int:
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
    profile_id = text("profile", requested)
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
        chosen = text("proposal", requested)
        if chosen not in user.proposals:
            raise OptionsError("proposal", f"{_shown(chosen)} is not one of your proposals")
        if fixed is not None and chosen != fixed:
            raise OptionsError("proposal", f"this server is for proposal {fixed}, not {_shown(chosen)}")
    if chosen is not None and chosen not in candidates:
        raise OptionsError("proposal", f"proposal {chosen} may not use profile {profile.id!r}")
    if chosen is None and candidates:
        chosen = candidates[0]
    if chosen is None and (_via_proposals_only(profile, user) or profile.requires_proposal):
        raise OptionsError("proposal", f"profile {profile.id!r} is billed to a proposal, and you have none")
    return chosen


def resolve_options(raw: Any, profiles: ProfileSet, user: UserAccess) -> ResolvedOptions:
    """Check raw user options against the profiles this user may use; fill in defaults.

    Raises OptionsError naming the first offending field. `None` and empty strings mean
    "not given" (a form's empty field, a REST body of only {"profile": ...}).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise OptionsError("user_options", "must be an object")
    known = option_fields()
    for key in raw:
        if key not in known:
            raise OptionsError(_shown(key) if not isinstance(key, str) else key[:64], "is not a known option")
    given = {key: value for key, value in raw.items() if value is not None and value != ""}

    profile = _choose_profile(given.get("profile"), profiles, user)
    proposal = _proposal(given.get("proposal"), profile, user)
    env_ids = [env.id for env in profile.environments]
    environment = profile.environment(choice("environment", given.get("environment", env_ids[0]), env_ids, profile))
    foreign = [key for key in given if key not in COMMON_FIELDS and key not in profile.option_fields]
    if foreign:
        raise OptionsError(foreign[0], f"is not offered by profile {profile.id!r}")
    request = profile.resolve_request({key: value for key, value in given.items() if key not in COMMON_FIELDS})
    return ResolvedOptions(profile=profile, environment=environment, request=request, proposal=proposal)  # type: ignore[arg-type]
