"""A server's session: when it must end, when it idles out, and whom it may be shared with.

Decided once at start from the profile and the backend's request, and stored with the server in
the hub database, so a hub that restarts enforces the same end, also one that passed while it
was down. Idle ends are the server's own: jupyter_server stops itself once nothing happened for
`idle_timeout` (and shuts down idle kernels and terminals first), so the hub polls no activity.
The hub checks idleness itself only where a backend's machine outlives its server (a VM), from
the activity the server reports to the hub anyway.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field

from daas_core.quantities import format_duration

from .options import ResolvedOptions

STATE_KEY = "daas"  # the spawner's part of the hub's spawner state; its `session` is a Session
ACTIVITY_INTERVAL = 300  # seconds between a server's activity reports to the hub (JupyterHub's default)
IDLE_CHECK = 60  # jupyter_server looks at its activity once a minute


class Session(BaseModel):
    """The ends of one server's session, decided at its start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str
    started_at: float
    max_lifetime: int | None = Field(None, ge=60)  # the profile's: the hub stops the server when it is over
    time_limit: int | None = Field(None, ge=0)  # the backend's own (a job's wall time): the backend ends it
    idle_timeout: int | None = Field(None, ge=60)
    share_group: str | None = None  # the JupyterHub group of the proposal it works for, if its profile shares

    @property
    def ends_at(self) -> float | None:
        """When the server ends at the latest, by either limit."""
        limits = [limit for limit in (self.max_lifetime, self.time_limit) if limit is not None]
        return self.started_at + min(limits) if limits else None

    @property
    def ends_by(self) -> str | None:
        """Which limit ends the server, in words: "maximum lifetime" (the hub's) or "wall time" (the backend's)."""
        if self.ends_at is None:
            return None
        by_profile = self.max_lifetime is not None and (self.time_limit is None or self.max_lifetime <= self.time_limit)
        return "maximum lifetime" if by_profile else "wall time"

    def idle_ends_at(self, last_activity: float | None) -> float | None:
        """When the server ends itself if nothing happens from now on (the hub's view of its activity)."""
        if self.idle_timeout is None:
            return None
        return max(self.started_at, last_activity or 0.0) + self.idle_timeout

    @property
    def activity_interval(self) -> int:
        """How often the server reports activity: often enough for the hub to tell an idle end in time."""
        if self.idle_timeout is None:
            return ACTIVITY_INTERVAL
        return max(30, min(ACTIVITY_INTERVAL, self.idle_timeout // 2))


def open_session(options: ResolvedOptions, share_group_template: str, now: float | None = None) -> Session:
    """The session a start with these options opens."""
    profile = options.profile
    share_group = None
    if profile.sharing and options.proposal is not None:
        share_group = share_group_template.format(id=options.proposal)
    return Session(
        profile=profile.id,
        started_at=time.time() if now is None else now,
        max_lifetime=profile.max_lifetime,
        time_limit=options.request.time_limit,
        idle_timeout=profile.idle_timeout,
        share_group=share_group,
    )


def session_args(session: Session, access_cache_seconds: int) -> list[str]:
    """jupyter_server settings that make the server end itself when idle, and trust a share for a short while."""
    args = [f"--HubOAuth.cache_max_age={access_cache_seconds}"]
    if session.idle_timeout is not None:
        timeout = session.idle_timeout
        interval = max(10, min(IDLE_CHECK, timeout // 4))
        args += [
            f"--ServerApp.shutdown_no_activity_timeout={timeout}",
            f"--MappingKernelManager.cull_idle_timeout={timeout}",
            f"--MappingKernelManager.cull_interval={interval}",
            "--MappingKernelManager.cull_connected=True",  # an open but unused tab is idle too
            "--MappingKernelManager.cull_busy=False",  # never a kernel that runs a cell
            f"--TerminalManager.cull_inactive_timeout={timeout}",
            f"--TerminalManager.cull_interval={interval}",
        ]
    return args


def session_env(session: Session, end_warning: int) -> dict[str, str]:
    """What the server (and the time-left display in JupyterLab) knows of its session."""
    env = {
        "DAAS_SESSION_STARTED_AT": str(int(session.started_at)),
        "DAAS_SESSION_END_WARNING": str(end_warning),
        "JUPYTERHUB_ACTIVITY_INTERVAL": str(session.activity_interval),
    }
    if session.ends_at is not None:
        env["DAAS_SESSION_ENDS_AT"] = str(int(session.ends_at))
    if session.idle_timeout is not None:
        env["DAAS_SESSION_IDLE_TIMEOUT"] = str(session.idle_timeout)
    return env


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def lifetime_over(session: Session, now: float) -> str | None:
    """Why the hub stops the server now, in the person's words, if its profile's lifetime is over."""
    if session.max_lifetime is None or now < session.started_at + session.max_lifetime:
        return None
    return (
        f"Your server was stopped at the end of its maximum lifetime ({format_duration(session.max_lifetime)}, "
        f"profile {session.profile!r}): it started {_clock(session.started_at)}."
    )


def idle_over(session: Session, now: float, last_activity: float | None) -> str | None:
    """Why the hub stops a server whose machine outlives it: idle for longer than its timeout.

    The server reports activity every `activity_interval`, and ends itself within a minute of the
    timeout; the hub waits for both before it decides.
    """
    ends = session.idle_ends_at(last_activity)
    if ends is None or now < ends + session.activity_interval + IDLE_CHECK:
        return None
    return idle_message(session)


def ended_idle(session: Session, now: float, last_activity: float | None) -> bool:
    """Whether a server that ended on its own most likely ended for being idle (its last activity is that old)."""
    ends = session.idle_ends_at(last_activity)
    return ends is not None and now >= ends


def idle_message(session: Session) -> str:
    assert session.idle_timeout is not None
    return (
        f"Your server stopped after {format_duration(session.idle_timeout)} without activity "
        f"(the idle timeout of profile {session.profile!r}). Your files are kept: start it again to go on."
    )
