"""What a Dask cluster may be: the site's limits (YAML), and the one validator of every request.

Requests come from notebooks (REST bodies); nothing in them reaches a scheduler command
before `resolve_request` / `resolve_scale` / `resolve_adapt` has turned it into bounded
numbers and names taken from the site's own lists. Malformed input is a 400, anything over
a limit a 403 naming the limit, so a scientist knows what to ask their admin for.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    NonNegativeInt,
    PositiveInt,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from daas_core.fields import AccountTemplate, MemoryMB, Strict, WalltimeSeconds
from daas_core.loading import SiteFileError, load_model
from daas_core.quantities import format_memory, format_walltime, parse_memory_mb, parse_walltime_seconds

PartitionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class DaskConfigError(SiteFileError):
    """A limits file that cannot be used; the message names the file and the field."""


class RequestError(ValueError):
    """A request refused; `status` is 400 (malformed) or 403 (not allowed, over a limit)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Limits(Strict):
    """Bounds and defaults for one user's clusters (per proposal where the site says so)."""

    max_clusters: PositiveInt = Field(2, description="Clusters one person may run at once.")
    max_workers: PositiveInt = Field(8, description="Workers per cluster (fixed or adaptive maximum).")
    max_cores: PositiveInt = Field(4, description="Cores per worker.")
    max_memory: MemoryMB = Field(16384, description="Memory per worker (MiB, or a size like 16G).")
    max_walltime: WalltimeSeconds = Field(8 * 3600, description="Wall time of each worker job.")
    partitions: list[PartitionName] = Field(default_factory=lambda: ["cpu"], min_length=1)
    cores: PositiveInt = Field(1, description="Cores per worker when the request names none.")
    memory: MemoryMB = Field(4096, description="Memory per worker when the request names none.")
    walltime: WalltimeSeconds = Field(3600, description="Worker wall time when the request names none.")
    idle_timeout: PositiveInt = Field(1800, description="Seconds without Dask work before the cluster stops.")

    @model_validator(mode="after")
    def _defaults_within_bounds(self) -> Limits:
        for default, bound in (("cores", "max_cores"), ("memory", "max_memory"), ("walltime", "max_walltime")):
            if getattr(self, default) > getattr(self, bound):
                raise ValueError(f"{default} is above {bound}")
        return self


Glob = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.*?\[\]!-]{1,64}$")]


class SchemaOfLimits:
    """A rule's `limits` in the JSON Schema: Limits' own fields as written, each optional, no others.

    The model keeps the mapping as written (it is merged with the defaults, then validated as Limits);
    the schema says so, for editors (`daas-dask schema`), instead of "any object".
    """

    @staticmethod
    def __get_pydantic_json_schema__(core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return handler(Limits.__pydantic_core_schema__)


class ProposalLimits(Strict):
    """Limits for clusters of proposals matching `match` and/or made from servers of `profile` (globs)."""

    match: Glob | None = Field(None, description="Proposal ids, e.g. 2023* or MX-*.")
    profile: Glob | None = Field(None, description="Spawn profiles of the notebook server, e.g. training*.")
    limits: Annotated[dict[str, Any], SchemaOfLimits] = Field(
        description="Fields of Limits that differ from the defaults."
    )

    @model_validator(mode="after")
    def _says_whom(self) -> ProposalLimits:
        if self.match is None and self.profile is None:
            raise ValueError("a rule names a proposal pattern (match), a profile pattern (profile), or both")
        return self

    def applies(self, proposal: str | None, profile: str | None) -> bool:
        for pattern, value in ((self.match, proposal), (self.profile, profile)):
            if pattern is not None and (value is None or not fnmatch.fnmatchcase(value, pattern)):
                return False
        return True


class DaskConfig(Strict):
    """The site's Dask offload configuration."""

    defaults: Limits = Field(default_factory=Limits)
    proposals: list[ProposalLimits] = Field(default_factory=list)
    account_template: AccountTemplate = Field("{proposal}", description="Slurm account of a proposal's workers.")
    require_proposal: bool = Field(False, description="Refuse clusters that work for no proposal.")

    @model_validator(mode="after")
    def _proposal_limits_are_limits(self) -> DaskConfig:
        for rule in self.proposals:
            self._merged(rule)
        return self

    def _merged(self, rule: ProposalLimits) -> Limits:
        """The defaults with a rule's fields; wall times go back as Slurm text (a bare number means minutes)."""
        defaults = self.defaults.model_dump()
        for name in ("walltime", "max_walltime"):
            defaults[name] = format_walltime(defaults[name])
        return Limits.model_validate(defaults | rule.limits)

    def limits_for(self, proposal: str | None, profile: str | None = None) -> Limits:
        """The defaults, overridden by the first rule that matches the proposal and the server's profile."""
        for rule in self.proposals:
            if rule.applies(proposal, profile):
                return self._merged(rule)
        return self.defaults

    def account(self, proposal: str | None) -> str | None:
        return self.account_template.replace("{proposal}", proposal) if proposal and self.account_template else None


def tightest(candidates: list[Limits]) -> Limits:
    """Limits that hold under every candidate: for a request that names none of several running servers."""
    first, *others = candidates
    if not others:
        return first
    partitions = [name for name in first.partitions if all(name in other.partitions for other in others)]
    if not partitions:
        raise RequestError(403, "partition: the profiles of your running servers share no partition; name a server")
    numbers = [name for name in Limits.model_fields if name != "partitions"]
    values: dict[str, Any] = {name: min(getattr(limits, name) for limits in candidates) for name in numbers}
    for name in ("walltime", "max_walltime"):
        values[name] = format_walltime(values[name])  # seconds back to Slurm text (a bare number means minutes)
    return Limits.model_validate(values | {"partitions": partitions})


class Adapt(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # "4", 2.0 and True are not counts
    minimum: NonNegativeInt = 0
    maximum: PositiveInt

    @model_validator(mode="after")
    def _ordered(self) -> Adapt:
        if self.minimum > self.maximum:
            raise ValueError("minimum is above maximum")
        return self


class ClusterRequest(Strict):
    """A create request exactly as the REST body may hold it."""

    workers: StrictInt | None = Field(None, ge=0)
    adapt: Adapt | None = None
    cores: StrictInt | None = Field(None, ge=1)
    memory: str | StrictInt | None = None
    partition: str | None = None
    walltime: str | StrictInt | None = None
    proposal: str | None = None
    # The notebook server the cluster is made from ("" is the default server); None: tied to none.
    server_name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._~-]{0,255}$")] | None = None


class ResolvedCluster(Strict):
    """A request made complete and bounded: what the cluster's jobs are submitted with."""

    proposal: str | None
    account: str | None
    partition: str
    cores: int
    memory_mb: int
    walltime_seconds: int
    workers: int
    adapt: Adapt | None
    idle_timeout: int
    max_workers: int
    server_name: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "proposal": self.proposal,
            "partition": self.partition,
            "cores": self.cores,
            "memory": format_memory(self.memory_mb),
            "walltime": format_walltime(self.walltime_seconds),
            "workers": self.workers,
            "adapt": self.adapt.model_dump() if self.adapt else None,
            "idle_timeout": self.idle_timeout,
        }


def _first_error(err: ValidationError) -> str:
    first = err.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{field}: {first['msg']}"


def _parsed(name: str, value: str | int | None, parse: Callable[[str | int], int], default: int, least: int) -> int:
    """A user's size or duration; zero would mean 'the whole node' or 'no limit' to Slurm, so it is refused."""
    if value is None:
        return default
    try:
        parsed = parse(value)
    except ValueError as err:
        raise RequestError(400, f"{name}: {err}") from None
    if parsed < least:
        raise RequestError(400, f"{name}: {value!r} is too small")
    return parsed


def _over(name: str, value: Any, limit: Any) -> RequestError:
    return RequestError(403, f"{name}: {value} is over your limit {limit}")


def server_limits(
    config: DaskConfig, proposal: str | None, servers: Mapping[str, str | None], server_name: str | None
) -> Limits:
    """The limits from the caller's running servers (name -> profile, as the hub knows them now).

    A request made for one server (named in it, or by the server's own token) gets that server's
    profile, and only while it runs; a request for none gets the tightest limits of all running
    servers, so leaving the name out is never a way around a profile rule.
    """
    if server_name is not None:
        if server_name not in servers:
            raise RequestError(403, f"server_name: {server_name!r} is not a running server of yours")
        return config.limits_for(proposal, servers[server_name])
    if servers:
        return tightest([config.limits_for(proposal, profile) for profile in servers.values()])
    return config.limits_for(proposal, None)


def resolve_request(
    raw: Any,
    config: DaskConfig,
    proposals: list[str],
    running: int,
    servers: Mapping[str, str | None] | None = None,
    token_server: str | None = None,
) -> ResolvedCluster:
    """Validate a create request for a user with these proposals and this many running clusters.

    `servers` are the caller's running notebook servers and their profiles, read from the hub for
    this request; `token_server` is the server whose token made it (None: a personal token).
    """
    if not isinstance(raw, dict):
        raise RequestError(400, "the body must be a JSON object")
    try:
        request = ClusterRequest.model_validate(raw)
    except ValidationError as err:
        raise RequestError(400, _first_error(err)) from None
    if request.workers is not None and request.adapt is not None:
        raise RequestError(400, "give either workers or adapt, not both")
    proposal = request.proposal if request.proposal is not None else (proposals[0] if proposals else None)
    if proposal is not None and proposal not in proposals:
        raise RequestError(403, f"proposal: {proposal!r} is not one of your proposals")
    if proposal is None and config.require_proposal:
        raise RequestError(403, "proposal: this site runs Dask clusters for proposals only")
    server_name = request.server_name if request.server_name is not None else token_server
    limits = server_limits(config, proposal, servers or {}, server_name)
    if running >= limits.max_clusters:
        raise _over("clusters", running + 1, f"max_clusters={limits.max_clusters}")
    memory = _parsed("memory", request.memory, parse_memory_mb, limits.memory, least=1)
    walltime = _parsed("walltime", request.walltime, parse_walltime_seconds, limits.walltime, least=60)
    partition = request.partition or limits.partitions[0]
    if partition not in limits.partitions:
        raise RequestError(403, f"partition: {partition!r} is not offered (choose from {', '.join(limits.partitions)})")
    cores = request.cores or limits.cores
    for name, value, bound, shown in (
        ("cores", cores, limits.max_cores, limits.max_cores),
        ("memory", memory, limits.max_memory, format_memory(limits.max_memory)),
        ("walltime", walltime, limits.max_walltime, format_walltime(limits.max_walltime)),
    ):
        if value > bound:
            raise _over(name, raw.get(name, value), f"max_{name}={shown}")
    workers = 0 if request.adapt is not None else (request.workers if request.workers is not None else 0)
    check_workers(request.adapt.maximum if request.adapt else workers, limits.max_workers)
    return ResolvedCluster(
        proposal=proposal,
        account=config.account(proposal),
        partition=partition,
        cores=cores,
        memory_mb=memory,
        walltime_seconds=walltime,
        workers=workers,
        adapt=request.adapt,
        idle_timeout=limits.idle_timeout,
        max_workers=limits.max_workers,
        server_name=server_name,
    )


def check_workers(count: int, max_workers: int) -> None:
    if count > max_workers:
        raise _over("workers", count, f"max_workers={max_workers}")


def resolve_scale(raw: Any, max_workers: int) -> int:
    """The body of a scale request: {"workers": n}."""
    if not isinstance(raw, dict) or set(raw) != {"workers"}:
        raise RequestError(400, 'the body must be {"workers": <number>}')
    workers = raw["workers"]
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise RequestError(400, "workers: a whole number >= 0")
    check_workers(workers, max_workers)
    return workers


def resolve_adapt(raw: Any, max_workers: int) -> Adapt:
    """The body of an adapt request: {"minimum": a, "maximum": b}."""
    try:
        adapt = Adapt.model_validate(raw)
    except ValidationError as err:
        raise RequestError(400, _first_error(err)) from None
    check_workers(adapt.maximum, max_workers)
    return adapt


def load_dask_config(path: str | Path) -> DaskConfig:
    """Read and validate the limits file (empty: the defaults); errors name the file and the field."""
    return load_model(DaskConfig, path, "Dask limits", DaskConfigError, empty_means_defaults=True)
