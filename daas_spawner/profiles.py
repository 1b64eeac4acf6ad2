"""Site profiles: the typed model of what a facility offers, loaded from YAML.

A profile is written by the site admin. It names a backend and bounds every choice a
user may make. What every profile has (id, texts, environments, who may use it) is here;
what a backend lets users choose, and its admin settings, live in that backend's own
profile class (`daas_spawner/backends/<kind>/profile.py`), found through the backend
registry: `Profile` is a union discriminated on `backend`. The options model (options.py)
checks user input against these bounds; the form renders from them. Loading fails loudly,
naming the file and the field, so a typo stops the hub at start-up instead of surfacing
as a strange job later.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from daas_core.fields import (
    AbsolutePath,
    DurationSeconds,
    Identifier,
    ModuleName,
    PlainText,
    SchedulerArg,
    Strict,
    UrlPath,
)
from daas_core.loading import SiteFileError, load_model, parse_model

if TYPE_CHECKING:
    from .options import BackendRequest

# Glob patterns over proposal ids (fnmatch: * ? [..]); the proposal id characters plus wildcards.
ProposalPattern = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.*?\[\]!-]{1,64}$")]
# The server's set-up, written by the site admin (never by users): one shell line each, a variable's name and value.
ShellLine = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x08\x0a-\x1f\x7f]{1,4000}$")]
VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
VariableValue = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{0,4000}$")]
# Variables the hub and the backends set for every server: a profile's `env` may not replace them.
RESERVED_PREFIXES = ("JUPYTERHUB_", "JPY_", "DAAS_")
RESERVED_NAMES = frozenset({"HOME", "USER", "LOGNAME"})


class ProfileConfigError(SiteFileError):
    """A profiles file that cannot be used; the message names the file and the field."""


DESKTOP_URL = "/desktop/"  # where jupyter-remote-desktop-proxy serves its noVNC page


class Environment(Strict):
    """Where the single-user server's Python comes from, and what the server opens."""

    id: Identifier
    display_name: PlainText
    description: PlainText = ""
    kind: Literal["lab", "desktop"] = Field(
        "lab",
        description="`lab`: the server opens the profile's default_url (JupyterLab). `desktop`: a remote desktop "
        f"in the browser ({DESKTOP_URL}, noVNC through jupyter-remote-desktop-proxy, which the environment must "
        "have, with a VNC server and a desktop installed where servers run).",
    )
    prefix: AbsolutePath | None = Field(None, description="A Python environment prefix (venv/conda).")
    modules: list[ModuleName] = Field(default_factory=list, description="Environment modules to load.")
    image: AbsolutePath | None = Field(None, description="An Apptainer image to run the server in.")
    apptainer_args: list[SchedulerArg] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Environment:
        if self.apptainer_args and not self.image:
            raise ValueError("apptainer_args given without an image")
        return self


def _default_environments() -> list[Environment]:
    return [Environment(id="default", display_name="Default Python")]


class Profile(Strict):
    """One entry of the spawn form: a backend plus the choices it allows.

    The common part of every profile. Each backend subclasses it with `backend` narrowed
    to its name (`Literal["slurm"]`), its settings and bounds, and `resolve_request`,
    which turns the user's backend options into the typed request its backend reads.
    """

    shell_setup: ClassVar[bool] = False
    """Whether this backend's servers start from a shell script, which can run `prologue` and `module_use`."""
    option_fields: ClassVar[tuple[str, ...]] = ()
    """The user options this backend's profiles take, besides profile, proposal and environment."""
    form_overrides: ClassVar[Mapping[str, str]] = {}
    """Form inputs (without the `<profile>.` prefix) that, when filled in, replace another option."""
    form_template: ClassVar[str | None] = None
    """The profile's form fragment, `<backend>/<file>` in the backend package's `templates/`; None: none."""
    availability_template: ClassVar[str | None] = None
    """The form fragment showing the backend's availability (once per form); None: none."""

    id: Identifier
    display_name: PlainText
    description: PlainText = ""
    backend: str
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
    max_lifetime: DurationSeconds | None = Field(
        None,
        description="The longest a server may run (`8h`, `2d`); the hub stops it then, also after a hub outage. "
        "A backend's own limit (a Slurm job's wall time) ends it earlier where shorter.",
    )
    idle_timeout: DurationSeconds | None = Field(
        None,
        description="The server stops itself after this long without activity (`30m`): no kernel running a cell, "
        "no request from a browser. Idle kernels and terminals are shut down after it too.",
    )
    sharing: bool = Field(
        True,
        description="Whether the owner of a server that works for a proposal may share it with that proposal's "
        "members (a guest uses the server as its owner: their files, their data rights).",
    )
    env: dict[VariableName, VariableValue] = Field(
        default_factory=dict,
        description='Variables the server gets (`{OMP_NUM_THREADS: "4"}`), as written: no $ expansion. Every '
        "backend; names the hub sets (JUPYTERHUB_*, JPY_*, DAAS_*, HOME, USER, LOGNAME) are refused.",
        json_schema_extra={"additionalProperties": False},  # pydantic gives the name pattern as patternProperties
    )
    module_use: list[AbsolutePath] = Field(
        default_factory=list,
        description="Module directories (`module use <path>`) before the environment's modules load. Backends "
        "whose servers start from a shell script (slurm).",
    )
    prologue: list[ShellLine] = Field(
        default_factory=list,
        description="Shell lines run before the server, after env and module_use (`source /etc/site/lab.sh`, "
        "`module load cuda`); a failing line stops the start. The site's text, run as the person; users never "
        "set it. Backends whose servers start from a shell script (slurm).",
    )

    @model_validator(mode="after")
    def _unique_environments(self) -> Profile:
        ids = [env.id for env in self.environments]
        if len(ids) != len(set(ids)):
            raise ValueError("environment ids must be unique")
        return self

    @field_validator("env")
    @classmethod
    def _no_variables_of_the_hub(cls, env: dict[str, str]) -> dict[str, str]:
        taken = sorted(name for name in env if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES))
        if taken:
            raise ValueError(
                f"{', '.join(taken)}: set by the hub or its backends (site-wide DAAS_* settings go in "
                "c.DaaSSpawner.environment)"
            )
        return env

    @model_validator(mode="after")
    def _setup_this_backend_runs(self) -> Profile:
        given = [name for name in ("prologue", "module_use") if getattr(self, name)]
        if given and not self.shell_setup:
            raise ValueError(
                f"{' and '.join(given)}: a {self.backend} server starts without a shell script to run them "
                "(slurm profiles can); put the set-up into the server's image or environment, or use env"
            )
        return self

    @field_validator("max_lifetime", "idle_timeout")
    @classmethod
    def _a_minute_or_more(cls, seconds: int | None) -> int | None:
        if seconds is not None and seconds < 60:
            raise ValueError("must be at least a minute (a server looks at its activity once a minute)")
        return seconds

    def environment(self, env_id: str) -> Environment | None:
        return next((env for env in self.environments if env.id == env_id), None)

    @property
    def restricted(self) -> bool:
        return bool(self.allowed_groups or self.allowed_proposals)

    @property
    def requires_proposal(self) -> bool:
        """Whether every server of this profile must work for a proposal (e.g. it is billed to one)."""
        return False

    def proposals_allowed(self, proposals: Iterable[str]) -> list[str]:
        """Those of a user's proposals that open this profile (in the user's order)."""
        return [p for p in proposals if any(fnmatch.fnmatchcase(p, pattern) for pattern in self.allowed_proposals)]

    def allows_group(self, groups: Collection[str]) -> bool:
        return bool(set(groups).intersection(self.allowed_groups))

    def allows(self, groups: Collection[str], proposals: Iterable[str] = ()) -> bool:
        return not self.restricted or self.allows_group(groups) or bool(self.proposals_allowed(proposals))

    def resolve_request(self, given: Mapping[str, Any]) -> BackendRequest:
        """The backend's typed, frozen request from the user's options for it (`option_fields` only).

        `given` holds only values the user filled in. Raise options.OptionsError naming the
        first bad field; the result is what the backend reads from its `Launch`.
        """
        raise NotImplementedError


def _quoted_choices(names: Sequence[str]) -> str:
    """'a', 'b' or 'c': how pydantic lists the values a literal takes."""
    quoted = [repr(name) for name in names] or ["a registered backend (none is registered)"]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _registered_profile(value: Any, handler: ValidatorFunctionWrapHandler) -> Profile:
    """Validate one profile as the class of the backend it names (the discriminator is `backend`)."""
    if isinstance(value, Profile):
        return value
    if not isinstance(value, dict):
        return handler(value)  # pydantic names what a profile must be
    from .backends.registry import profile_classes, unavailable  # here: the registry imports every backend

    classes = profile_classes()
    backend = value.get("backend")
    if backend is None:
        raise ValidationError.from_exception_data("Profile", [{"type": "missing", "loc": ("backend",), "input": value}])
    if isinstance(backend, str) and backend in unavailable():
        raise ValueError(f"backend {backend!r} cannot be used on this hub: {unavailable()[backend]}")
    if not isinstance(backend, str) or backend not in classes:
        error = {"type": "literal_error", "loc": ("backend",), "input": backend}
        raise ValidationError.from_exception_data(
            "Profile",
            [{**error, "ctx": {"expected": _quoted_choices(list(classes))}}],  # type: ignore[typeddict-item]
        )
    return classes[backend].model_validate(value)


class _RegisteredProfileSchema:
    """The JSON Schema of a profile: one of the registered backends' profile classes, chosen by `backend`.

    Validation goes through `_registered_profile`; this gives `ProfileSet.model_json_schema()` the
    same union, so the schema covers whichever backends are installed (plugins too).
    """

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        from .backends.registry import profile_classes  # here: the registry imports every backend

        classes = tuple(profile_classes().values())  # local and slurm at least: this package registers them
        union = Annotated[Union[classes], Field(discriminator="backend")]  # noqa: UP007 (a tuple of classes)
        return handler(TypeAdapter(union).core_schema)


AnyProfile = Annotated[Profile, WrapValidator(_registered_profile), _RegisteredProfileSchema()]


class ProfileSet(Strict):
    """All profiles of a site, in form order."""

    profiles: list[AnyProfile] = Field(min_length=1)
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


def local_demo() -> ProfileSet:
    """The spawner's default: one local JupyterLab profile (the demo)."""
    local = {
        "id": "local",
        "display_name": "Local JupyterLab",
        "description": "A JupyterLab server on the hub machine.",
        "backend": "local",
        "default_url": "/lab",
    }
    return parse_profiles({"profiles": [local]}, "the built-in demo profile")
