"""Which Unix accounts the hub and its services may act as: people's accounts, never root or a daemon's.

A hub name becomes an account at `sudo -u <name>` and in Slurm. Identity providers let people
pick names (eduTEAMS does), so a name is held to three rules before anything runs as it: the
POSIX pattern matched whole, an existing account with a uid in the range of people's accounts
(login.defs' UID_MIN..UID_MAX by default, which leaves out root, daemons, `nobody` and Debian's
fixed system ids such as slurm's 64030), and, where the site names one, membership of a group.
"""

from __future__ import annotations

import grp
import pwd
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from traitlets import Integer, List, Unicode, default
from traitlets.config import Configurable

# The portable POSIX set; use fullmatch (`$` would let a trailing newline through).
UNIX_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")


class AccountRefused(ValueError):
    """The name is not an account the hub may act as; the message says why, for logs and the person."""


def login_defs_uid_range(path: str = "/etc/login.defs") -> tuple[int, int]:
    """UID_MIN and UID_MAX as this machine's useradd uses them (1000 and 60000 when unset)."""
    values = {"UID_MIN": 1000, "UID_MAX": 60000}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return values["UID_MIN"], values["UID_MAX"]
    for line in lines:
        words = line.split()
        if len(words) == 2 and words[0] in values and words[1].isdigit():
            values[words[0]] = int(words[1])
    return values["UID_MIN"], values["UID_MAX"]


@dataclass(frozen=True)
class AccountPolicy:
    min_uid: int
    max_uid: int
    group: str = ""  # empty: any account in the uid range

    @classmethod
    def default(cls) -> AccountPolicy:
        return cls(*login_defs_uid_range())

    def check(self, name: str) -> pwd.struct_passwd:
        """The account `name` acts as, or AccountRefused."""
        if not isinstance(name, str) or not UNIX_NAME.fullmatch(name):
            raise AccountRefused(f"{name!r} is not a Unix account name")
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            raise AccountRefused(f"{name} has no Unix account here") from None
        if not self.min_uid <= account.pw_uid <= self.max_uid:
            raise AccountRefused(
                f"{name} is a system account (uid {account.pw_uid}, people's accounts are "
                f"{self.min_uid}-{self.max_uid}): the hub does not act as it"
            )
        if self.group and not self._member(account):
            raise AccountRefused(f"{name} is not in the group {self.group} of accounts the hub acts as")
        return account

    def _member(self, account: pwd.struct_passwd) -> bool:
        try:
            group = grp.getgrnam(self.group)
        except KeyError:
            return False
        return account.pw_gid == group.gr_gid or account.pw_name in group.gr_mem


def as_user(prefix: Sequence[str], username: str, argv: Sequence[str]) -> list[str]:
    """argv run as `username` through a command prefix such as `sudo -n -u {username} --`.

    The name is checked whole against the POSIX set first (AccountRefused otherwise), so it can
    never become an option of sudo or a second word; callers check the account policy themselves.
    """
    if not isinstance(username, str) or not UNIX_NAME.fullmatch(username):
        raise AccountRefused(f"{username!r} is not a Unix account name")
    return [part.replace("{username}", username) for part in prefix] + list(argv)


def acts_as_user(prefix: Sequence[str]) -> bool:
    """Whether a command prefix (sudo -u {username} ...) runs as the person, not as the caller's own account."""
    return any("{username}" in part for part in prefix)


class UserAccounts(Configurable):
    """How the hub's backends and the services act as a person, and as which accounts (`c.UserAccounts`).

    One section for every component, so a site states its account rules once: the hub reads it in
    jupyterhub_config.py (the backends take their defaults from it) and `daas-data` and `daas-dask`
    in their config file; `load_subconfig` shares one file between them.
    """

    user_prefix = List(
        Unicode(),
        ["sudo", "-n", "-u", "{username}", "--"],
        config=True,
        help="""Argv prefix that runs a command as the person; `{username}` is replaced by their account name.

        Used by the Slurm backend (sbatch, scancel), the data service (each reader) and the Dask
        service (sbatch, scancel, mkdir). A hub or service running as root can keep the default; an
        unprivileged one needs a sudo rule allowing exactly those commands as the people's accounts
        (see the README). Empty: everything runs as the component's own account (single-account demos).
        The local backend has its own (`c.LocalBackend.user_prefix`): its servers need `sudo -E`.""",
    )
    min_uid = Integer(
        config=True,
        help="""Lowest uid of an account the hub and the services act as.

        Default: UID_MIN of /etc/login.defs (1000). Hub names come from the identity provider,
        where people may choose them: root, daemons and other system accounts stay out.""",
    )
    max_uid = Integer(
        config=True,
        help="""Highest uid of an account the hub and the services act as. Default: UID_MAX of
        /etc/login.defs (60000), which leaves out `nobody` and Debian's fixed system ids (slurm is 64030).""",
    )
    account_group = Unicode(
        "",
        config=True,
        help="A Unix group whose members alone the hub and the services act as (e.g. `facility-users`); "
        "empty: any person's account in the uid range.",
    )

    @default("min_uid")
    def _min_uid_default(self) -> int:
        return login_defs_uid_range()[0]

    @default("max_uid")
    def _max_uid_default(self) -> int:
        return login_defs_uid_range()[1]

    @property
    def policy(self) -> AccountPolicy:
        return AccountPolicy(self.min_uid, self.max_uid, self.account_group)
