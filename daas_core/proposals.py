"""Experiment proposals: the model every package shares, and how the hub keeps a person's list.

A proposal (e.g. 20231234 at beamline ID11) is the unit a facility grants compute, data and
quotas to. Ids end up in JupyterHub group names, Slurm accounts and paths, so they are held
to a conservative character set here, whatever the identity provider or user office sends.
The authenticator writes them to auth_state; the spawner and the hub's proposals endpoint read them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

PROPOSAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # pydantic searches: keep the anchors
ProposalId = Annotated[str, StringConstraints(pattern=PROPOSAL_ID_PATTERN)]
# Shown on pages and in the server's environment: no control characters.
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{0,500}$")]
DataPath = Annotated[str, StringConstraints(pattern=r"^/[^\x00-\x1f\x7f]{0,4095}$")]


class Proposal(BaseModel):
    """One experiment proposal a person takes part in."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: ProposalId
    title: Text = ""
    instrument: Text = Field("", description="Instrument or beamline, e.g. ID11.")
    start: date | None = None
    end: date | None = None
    role: Text = Field("", description="The person's role in it, e.g. PI, member, local contact.")
    raw_data: DataPath | None = Field(None, description="Directory of the raw data (read-only for users).")
    processed_data: DataPath | None = Field(None, description="Directory for processed data (writable).")

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # User offices often send numeric ids (20231234); they are names here.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def parse_proposals(items: Iterable[Any], source: str) -> tuple[list[Proposal], list[str]]:
    """Validate proposals one by one: a bad entry is skipped and reported, not fatal to the rest."""
    proposals: list[Proposal] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            proposal = Proposal.model_validate(item)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            field = ".".join(str(part) for part in first["loc"]) or "<entry>"
            problems.append(f"{source}: proposal #{index}: {field}: {first['msg']}")
            continue
        if proposal.id not in seen:
            seen.add(proposal.id)
            proposals.append(proposal)
    return proposals, problems


def proposals_from_auth_state(auth_state: Mapping[str, Any] | None) -> list[Proposal]:
    """The proposals the authenticator stored for a user (empty without auth_state)."""
    if not auth_state:
        return []
    proposals, _ = parse_proposals(auth_state.get("proposals") or [], "auth_state")
    return proposals
