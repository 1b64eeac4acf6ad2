"""Field types shared by the site's YAML models (profiles, data locations, Dask limits).

Names that end up in scheduler arguments, scripts or paths are held to conservative
character sets here, once, so a profile can never carry a shell or #SBATCH construct even
though admins write it.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StringConstraints, WithJsonSchema

from .quantities import (
    DURATION_PATTERN,
    MEMORY_PATTERN,
    WALLTIME_PATTERN,
    parse_duration_seconds,
    parse_memory_mb,
    parse_walltime_seconds,
)


class Strict(BaseModel):
    """A site model: unknown keys are errors (a typo must not pass as a default), values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
SchedulerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$")]
ModuleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+/-]{0,127}$")]
AbsolutePath = Annotated[str, StringConstraints(pattern=r"^/[^\x00-\x1f\x7f]{0,4095}$")]
SchedulerArg = Annotated[str, StringConstraints(pattern=r"^--?[A-Za-z][^\x00-\x1f\x7f]{0,255}$")]
UrlPath = Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_./?=&%-]{0,255}$")]
PlainText = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]{0,2000}$")]


def written_as(pattern: str, number: str, examples: list[str]) -> WithJsonSchema:
    """The JSON Schema of a quantity as a site file writes it: a number in `number`'s unit, or text.

    Validation mode only: the model holds the parsed int, but a file holds "4G" or "8h", and an
    editor or `daas-profiles schema` must accept what the file may say.
    """
    as_text = {"type": "string", "pattern": pattern, "examples": examples}
    return WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0, "description": number}, as_text]}, "validation")


MemoryMB = Annotated[int, BeforeValidator(parse_memory_mb), written_as(MEMORY_PATTERN, "MiB", ["512M", "4G", "1.5T"])]
WalltimeSeconds = Annotated[
    int,
    BeforeValidator(parse_walltime_seconds),
    written_as(WALLTIME_PATTERN, "minutes", ["90", "4:00:00", "1-12:00:00"]),
]
DurationSeconds = Annotated[
    int, BeforeValidator(parse_duration_seconds), written_as(DURATION_PATTERN, "seconds", ["30m", "8h", "1h30m", "2d"])
]

# A scheduler account (Slurm --account): what sbatch, the Dask service and profiles accept.
ACCOUNT = re.compile(r"[A-Za-z0-9_.:+-]{1,100}")


def check_account_template(value: str) -> str:
    """`value` if it is an account with at most a {proposal} placeholder; ValueError otherwise."""
    if ACCOUNT.fullmatch(value.replace("{proposal}", "P")) is None:
        raise ValueError("an account is letters, digits and _ . : + - with at most a {proposal} placeholder")
    return value


def account_for(template: str, proposal: str) -> str:
    """The account a template names for a proposal; ValueError when the result is not an account."""
    account = template.replace("{proposal}", proposal)
    if ACCOUNT.fullmatch(account) is None:
        raise ValueError(f"refusing Slurm account {account!r}")
    return account


AccountTemplate = Annotated[str, AfterValidator(check_account_template)]
