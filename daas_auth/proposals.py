"""The rules that read proposal ids out of identity claims (the model is daas_core.proposals)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from daas_core.proposals import PROPOSAL_ID_PATTERN, Proposal


class ClaimRule(BaseModel):
    """Read proposal ids from one claim: every value that fully matches `pattern` gives one id.

    `claim` is a dotted path into the userinfo claims (`groups`, `eduperson_entitlement`,
    `realm_access.roles`); `pattern` is a regular expression with a group named `id`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    claim: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _has_id_group(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise ValueError(f"not a regular expression: {err}") from None
        if "id" not in compiled.groupindex:
            raise ValueError("needs a named group (?P<id>...) for the proposal id")
        return pattern

    def ids(self, claims: Mapping[str, Any]) -> list[str]:
        value = claim_value(claims, self.claim)
        values = value if isinstance(value, list) else [value]
        compiled = re.compile(self.pattern)
        found = []
        for item in values:
            match = compiled.fullmatch(item) if isinstance(item, str) else None
            if match and re.fullmatch(PROPOSAL_ID_PATTERN, match["id"]):
                found.append(match["id"])
        return found


def claim_value(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`realm_access.roles`), or None where the path ends early."""
    node: Any = claims
    for key in path.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def proposals_from_claims(claims: Mapping[str, Any], rules: Sequence[ClaimRule]) -> list[Proposal]:
    """Proposals named by the identity claims (ids only; the user office adds the metadata)."""
    ids: dict[str, None] = {}
    for rule in rules:
        ids.update(dict.fromkeys(rule.ids(claims)))
    return [Proposal(id=proposal_id) for proposal_id in ids]


def merge_proposals(from_office: Sequence[Proposal], from_claims: Sequence[Proposal]) -> list[Proposal]:
    """The user office's proposals (with metadata) first, then claim-only ids it did not list."""
    known = {proposal.id for proposal in from_office}
    return [*from_office, *(proposal for proposal in from_claims if proposal.id not in known)]
