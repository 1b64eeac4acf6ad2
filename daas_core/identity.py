"""A person's numeric Unix ids, which a pod or VM runs with: from the name service or from login claims.

Kubernetes and cloud VMs do not log people in through the name service: the pod's `runAsUser`,
`runAsGroup`, `fsGroup` and supplemental groups must be given as numbers. They decide what data
the server can read, so they come from the facility (its accounts, or claims its identity
provider fills from LDAP), never from anything a person sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

AUTH_STATE_KEY = "posix"  # auth_state["posix"] = {"uid": int, "gid": int, "groups": [int, ...]}


@dataclass(frozen=True)
class PosixIdentity:
    """The person's numeric ids (never from user options)."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # Root's ids would give a pod root's access to every mounted file: never build one.
        for name, value in (("uid", self.uid), ("gid", self.gid), *(("groups", g) for g in self.groups)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"refusing {name} {value!r}: a server runs with a person's ids, never root's")

    def as_auth_state(self) -> dict[str, Any]:
        return {"uid": self.uid, "gid": self.gid, "groups": list(self.groups)}

    @classmethod
    def from_auth_state(cls, auth_state: Mapping[str, Any]) -> PosixIdentity | None:
        """The ids the authenticator stored at login; None when it stored none (or something malformed)."""
        stored = auth_state.get(AUTH_STATE_KEY)
        if not isinstance(stored, Mapping):
            return None
        try:
            return cls(stored["uid"], stored["gid"], tuple(stored.get("groups") or ()))
        except (KeyError, TypeError, ValueError):
            return None


def _number(claims: Mapping[str, Any], claim: str) -> int:
    value = claims.get(claim)
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return int(value)  # LDAP mappers often send numbers as strings
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"the identity claim {claim!r} is {value!r}, not a number")


def identity_from_claims(
    claims: Mapping[str, Any], uid_claim: str, gid_claim: str, groups_claim: str = ""
) -> PosixIdentity:
    """The ids named by the site's claims (e.g. `uidNumber`, `gidNumber`); ValueError says which claim is wrong."""
    if not (uid_claim and gid_claim):
        raise ValueError("both a uid claim and a gid claim must be configured")
    groups: tuple[int, ...] = ()
    if groups_claim:
        raw = claims.get(groups_claim, [])
        values = raw if isinstance(raw, list) else [raw]
        groups = tuple(sorted({_number({groups_claim: value}, groups_claim) for value in values}))
    return PosixIdentity(_number(claims, uid_claim), _number(claims, gid_claim), groups)
