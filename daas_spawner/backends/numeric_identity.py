"""Backends whose servers get the person's numeric ids handed to them: pods and VMs.

A pod's `runAsUser` and a VM's service unit take numbers; nothing logs the person in through the
name service there. The ids decide what data the server can read, so they come from the site
(its name service, or the claims its identity provider fills from LDAP), never from user options.
"""

from __future__ import annotations

import os
from typing import TypeVar

from traitlets import Enum

from daas_core.identity import PosixIdentity

from .base import Backend, BackendState, Launch, SpawnFailed

S = TypeVar("S", bound=BackendState)


class NumericIdentityBackend(Backend[S]):
    """A backend that runs servers with numeric ids it is given (`identity`), from the site's chosen source."""

    identity_source = Enum(
        ["passwd", "auth_state"],
        "passwd",
        config=True,
        help="""Where the server's uid, gid and groups come from. "passwd": the person's account as the hub's
        name service sees it (SSSD or LDAP, as for Slurm). "auth_state": the ids the login carried
        (c.DaaSAuthenticator.uid_claim, gid_claim, groups_claim), for a hub that does not see the site's
        accounts, e.g. in a pod. Never from user options, and never outside the uid range of people's
        accounts: the server runs as the person, so the data's Unix permissions hold as on Slurm.""",
    )

    def identity(self, launch: Launch) -> PosixIdentity:
        """The person's ids from `identity_source`; SpawnFailed when there are none a person may have."""
        if self.identity_source == "passwd":
            account = self.account(launch.username)
            groups = tuple(sorted(set(os.getgrouplist(account.pw_name, account.pw_gid))))
            return PosixIdentity(uid=account.pw_uid, gid=account.pw_gid, groups=groups)
        identity = launch.identity
        if identity is None:
            raise SpawnFailed(
                "this hub starts servers with the Unix ids your login carries, and yours carried none: "
                "log out and in again, or ask the facility to check your account"
            )
        if not self.min_uid <= identity.uid <= self.max_uid:
            raise SpawnFailed(
                f"your login's uid {identity.uid} is not a person's account here ({self.min_uid}-{self.max_uid})"
            )
        return identity
