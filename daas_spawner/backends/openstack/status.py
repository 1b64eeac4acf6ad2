"""What Nova's answers mean for the person: progress, why a server ended, why a create was refused.

Pure functions on the compute API's JSON (the server objects of `GET /servers/detail`, the
bodies of refusals), written for the scientist who waits, not for the operator.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..base import ProgressEvent

# task_state while status is BUILD -> what the person reads, and how far along the start is.
_BUILD_STEPS = {
    None: (30, "Your VM is queued in the cloud"),
    "scheduling": (35, "The cloud is finding a host for your VM"),
    "block_device_mapping": (40, "The cloud is preparing your VM's disk"),
    "networking": (45, "The cloud is connecting your VM to its network"),
    "spawning": (50, "Your VM is booting"),
}
_ENDED_STATES = {
    "DELETED": "was deleted",
    "SOFT_DELETED": "was deleted",
    "SHUTOFF": "was shut down",
    "SHELVED": "was shelved",
    "SHELVED_OFFLOADED": "was shelved",
    "SUSPENDED": "was suspended",
    "PAUSED": "was paused",
}
GONE = "your VM is gone from the cloud (deleted outside the hub)"
_NO_HOST = re.compile(r"no valid host", re.IGNORECASE)
_QUOTA = re.compile(r"quota exceeded for (\w+)", re.IGNORECASE)
_SECRET_LIKE = re.compile(r"[A-Za-z0-9_-]{32,}")


def _short(text: str) -> str:
    """A cloud's message cut to one sentence-sized line, with anything token-like removed."""
    line = " ".join(str(text).split())
    return _SECRET_LIKE.sub("…", line)[:300]


def fault_in_words(fault: dict[str, Any] | None) -> str:
    """Nova's fault of a server in ERROR, as a clause: what happened and what the person can do."""
    message = _short((fault or {}).get("message") or "")
    if _NO_HOST.search(message):
        return (
            "the cloud has no host with room for this size now (No valid host was found): "
            "choose a smaller size, or try again later"
        )
    quota = _QUOTA.search(message)
    if quota:
        return f"the project's quota for {quota.group(1)} is used up: stop another server, or ask for a larger quota"
    return f"the cloud could not create your VM ({message or 'no reason given'})"


def refusal_in_words(status: int, body: str) -> str:
    """A create the compute API refused (4xx/5xx), as a sentence for the person."""
    try:
        message = next(iter(json.loads(body).values())).get("message", "")
    except (ValueError, AttributeError, StopIteration, TypeError):
        message = body
    message = _short(message)
    quota = _QUOTA.search(message)
    if status in (403, 413) and quota:
        return (
            f"The project's quota for {quota.group(1)} is used up ({message}): "
            "stop another server, or ask the facility for a larger quota."
        )
    if status == 400:
        return f"The cloud refused this server's description ({message}): please tell the facility's support."
    if status in (401, 403):
        return f"The hub may not create servers in the cloud ({status}: {message}): please tell the facility's support."
    return f"The cloud could not take the request ({status}: {message}); please try again later."


def progress_event(server: dict[str, Any] | None) -> ProgressEvent | None:
    """Where a starting server is, from the last view of it; None before the view shows it."""
    if server is None:
        return None
    status = server.get("status")
    if status == "BUILD":
        progress, message = _BUILD_STEPS.get(server.get("OS-EXT-STS:task_state"), _BUILD_STEPS[None])
        return ProgressEvent(progress, message)
    if status == "ACTIVE":
        return ProgressEvent(60, "Your VM is running: cloud-init is starting JupyterLab")
    return None


def sentence(clause: str) -> str:
    """A clause of this module as the sentence the person reads."""
    return clause[:1].upper() + clause[1:] + "."


def end_reason(server: dict[str, Any] | None) -> str | None:
    """Why the server is over (a clause), or None while it builds or runs; None server: gone from the cloud."""
    if server is None:
        return GONE
    status = server.get("status")
    if status == "ERROR":
        return fault_in_words(server.get("fault"))
    if status in _ENDED_STATES:
        return f"your VM {_ENDED_STATES[status]} outside the hub"
    return None
