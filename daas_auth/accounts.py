"""Which Unix account a person logs in as: a name the facility gave them, never one they chose.

A hub name is used as-is for `sudo -u` and Slurm, and eduTEAMS lets people choose their
`preferred_username`. So the account comes from a source the facility controls: a claim the
site trusts to carry the account (e.g. a Keycloak attribute mapped from LDAP), or the user
office's answer for the person's stable id (`sub`). Whatever the source says must already be
an account name: it is not lower-cased, trimmed or otherwise bent into one.
"""

from __future__ import annotations

from typing import Any

from daas_core.accounts import UNIX_NAME


class NoAccount(ValueError):
    """This login maps to no account the hub may use; the message is for the person."""


def account_name(value: Any, source: str) -> str:
    """`value` if it is a Unix account name whole, else NoAccount naming the source."""
    if not isinstance(value, str) or not UNIX_NAME.fullmatch(value):
        shown = repr(value) if isinstance(value, str) else f"no text ({type(value).__name__})"
        raise NoAccount(f"{source} gives {shown}, which is not a Unix account name")
    return value
