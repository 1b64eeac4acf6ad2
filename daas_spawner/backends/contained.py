"""Backends whose servers run in a machine of their own: a pod, a VM.

What they share. Nothing logs the person in there: the server gets the person's numeric ids, which
decide what data it can read, so they come from the site (its name service, or the claims its
identity provider fills from LDAP), never from user options. The server's environment is written
where others read it (a pod spec, user_data): it carries a one-time bootstrap secret, no token.
And the hub keeps one view of all its servers (a watch, a list), in which a poll and the end of
a server are lookups.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar

from traitlets import Dict, Enum, TraitError, Unicode, validate

from daas_core.identity import PosixIdentity
from daas_core.mounts import Mount

from .base import BOOTSTRAP_ENV, Backend, BackendState, Launch, SpawnFailed

S = TypeVar("S", bound=BackendState)
# The server's variables every such backend sets itself (and the hub's JUPYTERHUB_*): a site's `environment` cannot.
SERVER_VARIABLES = frozenset({BOOTSTRAP_ENV, "HOME", "DAAS_PROFILE", "DAAS_OPTIONS", "DAAS_DATA"})


class ServersView(Protocol):
    """The hub's one view of a backend's servers."""

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]: ...

    def notify(self) -> None: ...


class ContainedBackend(Backend[S]):
    """A backend whose servers run in pods or VMs, with ids and an environment it hands them.

    Subclasses give `_view` (their shared view), `_end` (why a server is over, from it) and
    `_remove_ended` (delete what an ended server left); `poll` and `watch` follow from those.
    """

    backend_variables: ClassVar[frozenset[str]] = SERVER_VARIABLES

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
    environment = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""Variables this backend's servers get, over the spawner's (`c.DaaSSpawner.environment`): where
        pods or VMs reach the hub's services by another URL than Slurm jobs do, e.g. {"DAAS_DASK_URL":
        "http://proxy-public/services/daas-dask/"} (the proxy's in-cluster address) while Slurm jobs use the
        public name. No secrets: pod specs and user_data are readable. Names the hub or the backend set
        (JUPYTERHUB_*, HOME, DAAS_BOOTSTRAP, DAAS_PROFILE, DAAS_OPTIONS, DAAS_DATA and the backend's own)
        are refused; an environment's prefix sets PATH over this one's.""",
    )

    @validate("environment")
    def _no_variables_of_the_hub(self, proposal: Any) -> dict[str, str]:
        taken = [name for name in proposal.value if name.startswith("JUPYTERHUB_") or name in self.backend_variables]
        if taken:
            raise TraitError(f"environment: {', '.join(sorted(taken))} are set by the hub or the backend")
        return proposal.value

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

    def server_env(self, launch: Launch, home: str, **own: str) -> dict[str, str]:
        """The server's environment: the spawner's, the site's for this backend and profile, then the backend's `own`.

        No token (it is written where others read it): the bootstrap secret instead. The data is
        where the pod or VM mounts it (`mount_root`), which the launcher links into the working tree.
        """
        env = {
            **launch.env,
            **self.environment,
            **launch.options.profile.env,
            BOOTSTRAP_ENV: launch.bootstrap,
            "HOME": home,
            "DAAS_PROFILE": launch.options.profile.id,
            "DAAS_OPTIONS": json.dumps(launch.options.summary(), sort_keys=True),
            **own,
        }
        prefix = launch.options.environment.prefix
        if prefix:
            env["PATH"] = f"{prefix}/bin:/usr/local/bin:/usr/bin:/bin"
        if launch.mounts and launch.data_locations is not None:
            root = launch.data_locations.mount_root
            env["DAAS_DATA"] = json.dumps(
                [Mount(m.proposal, m.name, m.target(root), m.writable).__dict__ for m in launch.mounts]
            )
        return env

    # -- the hub's view of the servers ------------------------------------------------------------

    def _view(self) -> ServersView:
        raise NotImplementedError

    def _end(self, state: S) -> str | None:
        """Why the server is over (a sentence for the person), from the view; None while it may still run."""
        raise NotImplementedError

    def _remove_ended(self, state: S) -> None:
        """Delete what a server that ended on its own left (JupyterHub does not stop a server its poll found ended)."""
        raise NotImplementedError

    async def poll(self, state: S) -> int | None:
        await self.ready()
        if self._end(state) is None:
            return None
        # JupyterHub's own poll may see the end before the view's next look: the spawner's watch
        # hears it first, so the person is told why (the watch's reason) and not only that it stopped.
        self._view().notify()
        self._remove_ended(state)
        return 1

    def watch(self, state: S, on_end: Callable[[str], None]) -> Callable[[], None]:
        unsubscribe: Callable[[], None] | None = None

        def check() -> None:
            why = self._end(state)
            if why is not None and unsubscribe is not None:
                unsubscribe()
                self._remove_ended(state)
                on_end(why)

        unsubscribe = self._view().subscribe(check)
        return unsubscribe
