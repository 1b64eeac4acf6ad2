"""What a server's pod and its events mean, in the words of the scientist who asked for it.

Pure functions over the API's JSON (dicts as the watches keep them, camelCase keys):
- `pod_progress`: where a starting server is (waiting for a node and why, pulling, started);
- `pod_end`: why a server ended, or None while it may still come up or runs;
- `api_refusal`: what a refused API call (a Status body) means: quota, admission, invalid.

Events are core/v1 Events of the pod, in any order; the newest relevant one counts. Texts
from Kubernetes are passed on where no plainer words are known, whitespace-squeezed and cut
to `MESSAGE_LIMIT` characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from daas_core.quantities import format_walltime

from ..base import ProgressEvent
from .resources import memory_mib, parse_quantity, pod_requests

MESSAGE_LIMIT = 300

# Progress, ascending through a start.
PROGRESS_PENDING = 20  # the pod exists, waiting for the scheduler (or for a node to fit)
PROGRESS_SCHEDULED = 40  # bound to a node: volumes, sandbox
PROGRESS_PULLING = 50
PROGRESS_PULLED = 60  # image there, container created or started
PROGRESS_RUNNING = 80  # the container runs; the server is yet to answer

IMAGE_PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
_CONTAINER_SETUP_FAILURES = {
    "CreateContainerConfigError": "cannot be set up",
    "CreateContainerError": "cannot be created",
    "RunContainerError": "cannot be started",
}
_START_FAILURES = frozenset({"ContainerCannotRun", "StartError"})
_STAGES = {  # event reason -> progress, also the tie-break between events of the same second
    "Scheduled": PROGRESS_SCHEDULED,
    "FailedMount": PROGRESS_SCHEDULED,
    "FailedAttachVolume": PROGRESS_SCHEDULED,
    "Pulling": PROGRESS_PULLING,
    "Pulled": PROGRESS_PULLED,
    "Created": PROGRESS_PULLED,
    "Started": PROGRESS_PULLED,
}
_ARCH_LABELS = frozenset({"kubernetes.io/arch", "beta.kubernetes.io/arch"})
_EPOCH = datetime.min.replace(tzinfo=timezone.utc)
DELETED = "the server's pod was deleted"


def cut(text: Any, limit: int = MESSAGE_LIMIT) -> str:
    """A message from elsewhere, on one line and at most `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


# ---- events -------------------------------------------------------------------------------


def _event_time(event: dict[str, Any]) -> datetime:
    candidates = (
        (event.get("series") or {}).get("lastObservedTime"),
        event.get("eventTime"),
        event.get("lastTimestamp"),
        event.get("firstTimestamp"),
        (event.get("metadata") or {}).get("creationTimestamp"),
    )
    for stamp in candidates:
        if isinstance(stamp, str) and stamp:
            try:
                return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            except ValueError:
                continue
    return _EPOCH


def _own_events(pod: dict[str, Any] | None, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of this very pod (a pod made again under the same name has another uid), oldest first."""
    uid = ((pod or {}).get("metadata") or {}).get("uid")
    own = [e for e in events if not uid or (e.get("involvedObject") or {}).get("uid") in (None, uid)]
    return sorted(own, key=lambda e: (_event_time(e), _STAGES.get(e.get("reason", ""), 0)))


def _newest(events: list[dict[str, Any]], reasons: Iterable[str]) -> dict[str, Any] | None:
    wanted = set(reasons)
    return next((e for e in reversed(events) if e.get("reason") in wanted), None)


# ---- the scheduler's summary ----------------------------------------------------------------

_FIT_ERROR = re.compile(r"0/(?P<total>\d+) nodes are available: (?P<reasons>.*)", re.DOTALL)
_REASON_SPLIT = re.compile(r", (?=\d+ )")  # "1 Insufficient cpu, 2 node(s) had taint {a: b}, that the pod ..."
_COUNTED = re.compile(r"(?P<count>\d+) (?P<reason>.*)", re.DOTALL)
_INSUFFICIENT = re.compile(r"Insufficient (?P<resource>\S+)")
_TAINT = re.compile(
    r"node\(s\) had (?:untolerated )?taint \{(?P<key>[^:}]*):? ?(?P<value>[^}]*)\}(?:, that the pod didn't tolerate)?"
)
_TAINT_WORDS = {
    "node.kubernetes.io/not-ready": "not ready",
    "node.kubernetes.io/unreachable": "unreachable",
    "node.kubernetes.io/unschedulable": "closed to new pods (cordoned)",
    "node.kubernetes.io/memory-pressure": "low on memory",
    "node.kubernetes.io/disk-pressure": "low on disk space",
    "node.kubernetes.io/pid-pressure": "low on process ids",
    "node.kubernetes.io/network-unavailable": "without network",
    "node-role.kubernetes.io/master": "reserved for the control plane",
    "node-role.kubernetes.io/control-plane": "reserved for the control plane",
}
_NODE_STATE_WORDS = {  # reason -> what those nodes are
    "node(s) were unschedulable": "closed to new pods (cordoned)",
    "node(s) had volume node affinity conflict": "unable to reach the server's volumes",
    "node(s) didn't find available persistent volumes to bind": "without a free volume for the server's claims",
    "Too many pods": "full (no room for another pod)",
}
_PRE_FILTER_WORDS = {
    "pod has unbound immediate PersistentVolumeClaims": "the server's volume claims are not bound to a volume yet",
}
_SELECTOR_REASONS = frozenset(
    {
        "node(s) didn't match node selector",
        "node(s) didn't match Pod's node affinity",
        "node(s) didn't match Pod's node affinity/selector",
    }
)


_FREE_NOUNS = {"cpu": "free cores", "memory": "free memory", "ephemeral-storage": "free local disk space"}


def _is_gpu(resource: str) -> bool:
    return "gpu" in resource or resource.startswith("nvidia.com/mig-")


def _number(amount: Decimal) -> str:
    return f"{amount.normalize():f}"


def _amount_words(resource: str, amount: Decimal | None) -> tuple[str, str]:
    """(what the pod needs free, how a node falls short of it), e.g. ("4 free cores", "fewer than ")."""
    gpu = _is_gpu(resource)
    if amount is None or resource == "ephemeral-storage":
        noun = _FREE_NOUNS.get(resource) or (f"free GPUs ({resource})" if gpu else f"free {resource}")
        return f"enough {noun}", "not "
    if resource == "memory":
        return f"{memory_words(amount)} of free memory", "less than "
    plural = "" if amount == 1 else "s"
    if resource == "cpu":
        return f"{_number(amount)} free core{plural}", "fewer than "
    if gpu:
        return f"{_number(amount)} free GPU{plural} ({resource})", "fewer than "
    return f"{_number(amount)} free {resource}", "fewer than "


def memory_words(amount: Decimal | int) -> str:
    """Bytes as people read them: "4 GiB", "1536 MiB"."""
    mib = memory_mib(Decimal(amount))
    return f"{mib // 1024} GiB" if mib and mib % 1024 == 0 else f"{mib} MiB"


def _some(count: int, total: int, state: str) -> str:
    if count < total:
        return f"{count} of {total} nodes {'is' if count == 1 else 'are'} {state}"
    if total == 1:
        return f"the only node is {state}"
    return f"both nodes are {state}" if total == 2 else f"all {total} nodes are {state}"


def _selector_state(pod: dict[str, Any] | None) -> str:
    selector = ((pod or {}).get("spec") or {}).get("nodeSelector") or {}
    if selector and set(selector) <= _ARCH_LABELS:
        return f"not of the chosen architecture ({', '.join(sorted(set(selector.values())))})"
    if selector:
        shown = ", ".join(f"{key}={value}" for key, value in sorted(selector.items()))
        return f"not among the nodes this profile runs on ({shown})"
    return "not among the nodes this profile runs on"


def _reason_words(count: int | None, total: int, reason: str, pod: dict[str, Any] | None) -> str:
    if count is None:  # a pre-filter verdict on the pod, not a count of nodes (newer schedulers)
        return _PRE_FILTER_WORDS.get(reason, cut(reason))
    if reason in _PRE_FILTER_WORDS:
        return _PRE_FILTER_WORDS[reason]
    if match := _INSUFFICIENT.fullmatch(reason):
        resource = match["resource"]
        wanted = pod_requests(pod).get(resource) if pod else None
        what, fewer = _amount_words(resource, wanted)
        if count >= total:
            return f"no node has {what}"
        has = "has" if count == 1 else "have"
        return f"{count} of {total} nodes {has} {fewer}{what}"
    if match := _TAINT.fullmatch(reason):
        key, value = match["key"].strip(), match["value"].strip()
        state = _TAINT_WORDS.get(key) or f"reserved for other uses (taint {key}{'=' + value if value else ''})"
        return _some(count, total, state)
    if reason in _SELECTOR_REASONS:
        return _some(count, total, _selector_state(pod))
    if reason in _NODE_STATE_WORDS:
        return _some(count, total, _NODE_STATE_WORDS[reason])
    return cut(f"{count} {reason}")


def scheduling_words(message: str, pod: dict[str, Any] | None = None) -> str:
    """The scheduler's FailedScheduling summary in plain words; `pod` gives the amounts asked for.

    Reads the format of kube-scheduler 1.20 ("0/3 nodes are available: 1 Insufficient cpu, 2 node(s)
    had taint {k: v}, that the pod didn't tolerate.") and of newer ones (untolerated taint,
    counts left out of pre-filter verdicts, a " preemption: ..." verdict after it, dropped here).
    Anything else is passed on as it is.
    """
    text = message.strip().split(" preemption: ", 1)[0]
    match = _FIT_ERROR.fullmatch(text)
    if not match:
        if text.rstrip(".") == "no nodes available to schedule pods":
            return "the cluster has no nodes"
        return cut(text)
    total = int(match["total"])
    parts = []
    for item in _REASON_SPLIT.split(match["reasons"].strip().rstrip(".")):
        counted = _COUNTED.fullmatch(item)
        count, reason = (int(counted["count"]), counted["reason"]) if counted else (None, item)
        parts.append(_reason_words(count, total, reason.strip(), pod))
    return "; ".join(parts) if parts else cut(text)


# ---- progress -------------------------------------------------------------------------------


def _image(pod: dict[str, Any]) -> str:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return containers[0].get("image", "")


def _unschedulable_message(status: dict[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return condition.get("message") or None
    return None


def pod_progress(pod: dict[str, Any] | None, events: list[dict[str, Any]]) -> ProgressEvent | None:
    """Where the server's start is; None when there is no pod or it ended (see `pod_end`).

    Progress numbers rise through the start: 20 the pod waits for a node (with the
    scheduler's reasons, from the newest FailedScheduling event or the PodScheduled
    condition), 40 assigned to a node (waiting for volumes), 50 pulling the image,
    60 image there / container created or started, 80 running, waiting for JupyterLab.
    """
    if pod is None:
        return None
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return None
    name = (pod.get("metadata") or {}).get("name", "")
    node = (pod.get("spec") or {}).get("nodeName")
    own = _own_events(pod, events)
    if not node:
        failed = _newest(own, {"FailedScheduling"})
        message = failed.get("message") if failed else _unschedulable_message(status)
        if message:
            return ProgressEvent(PROGRESS_PENDING, f"Waiting for a node: {scheduling_words(message, pod)}")
        return ProgressEvent(PROGRESS_PENDING, f"Pod {name} created, waiting for the scheduler")
    statuses = status.get("containerStatuses") or []
    if statuses and all("running" in (s.get("state") or {}) for s in statuses):
        return ProgressEvent(PROGRESS_RUNNING, f"Started on node {node}, waiting for JupyterLab")
    latest = _newest(own, _STAGES)
    reason = latest.get("reason") if latest else None
    if reason == "Pulling":
        return ProgressEvent(PROGRESS_PULLING, f"Pulling the image {_image(pod)} on node {node}")
    if reason in ("Pulled", "Created"):
        return ProgressEvent(PROGRESS_PULLED, f"Image ready on node {node}, starting the server")
    if reason == "Started":
        return ProgressEvent(PROGRESS_PULLED, f"Server started on node {node}")
    if reason in ("FailedMount", "FailedAttachVolume"):
        message = cut(latest.get("message", "")) if latest else ""
        return ProgressEvent(PROGRESS_SCHEDULED, f"Assigned to node {node}, waiting for its volumes: {message}")
    return ProgressEvent(PROGRESS_SCHEDULED, f"Assigned to node {node}")


# ---- ends -----------------------------------------------------------------------------------

_PULL_FAILED_PREFIX = re.compile(r'^Failed to pull image "[^"]*": ')


def _removed_by(events: list[dict[str, Any]]) -> str | None:
    """Why Kubernetes itself removed the pod, from its events."""
    event = _newest(events, {"Evicted", "Preempted", "TaintManagerEviction"})
    if event is None:
        return None
    if event["reason"] == "Evicted":
        return f"the server's pod was evicted from its node: {cut(event.get('message', ''))}"
    if event["reason"] == "Preempted":
        return "the server's pod was preempted: Kubernetes made room for a pod of higher priority"
    return "the server's node became unavailable, and Kubernetes removed its pod"


def _memory_limit(pod: dict[str, Any], container_name: str) -> str | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        if container.get("name") == container_name:
            limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
            return memory_words(parse_quantity(limit)) if limit is not None else None
    return None


def _pull_message(waiting: dict[str, Any], events: list[dict[str, Any]]) -> str:
    """The registry's answer: the back-off's own message only repeats the image, the Failed event says why."""
    message = waiting.get("message", "")
    failed = _newest([e for e in events if str(e.get("message", "")).startswith("Failed to pull image")], {"Failed"})
    if waiting.get("reason") == "ImagePullBackOff" and failed:
        message = failed.get("message", "")
    return cut(_PULL_FAILED_PREFIX.sub("", message) or waiting.get("reason", ""))


def _container_failure(pod: dict[str, Any], container: dict[str, Any], image: str, events: list) -> str | None:
    """Why this container ended the server, or never will be the server, beyond a plain exit."""
    state = container.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason", "")
    if reason in IMAGE_PULL_FAILURES:
        return f"the image {image} cannot be pulled: {_pull_message(waiting, events)}"
    if reason in _CONTAINER_SETUP_FAILURES:
        return f"the server's container {_CONTAINER_SETUP_FAILURES[reason]}: {cut(waiting.get('message') or reason)}"
    terminated = state.get("terminated") or {}
    if terminated.get("reason") == "OOMKilled":
        limit = _memory_limit(pod, container.get("name", ""))
        return f"the server ran out of memory (limit {limit})" if limit else "the server ran out of memory"
    if terminated.get("reason") in _START_FAILURES:
        return f"the server cannot start: {cut(terminated.get('message') or terminated['reason'])}"
    return None


def _container_exit(container: dict[str, Any]) -> str | None:
    terminated = (container.get("state") or {}).get("terminated")
    if terminated is None:
        return None
    code = terminated.get("exitCode")
    if isinstance(code, int) and 128 < code <= 128 + 64:
        return f"the server was killed by signal {code - 128} (exit code {code})"
    return f"the server exited with code {code}"


def pod_end(
    pod: dict[str, Any] | None, events: list[dict[str, Any]], last_seen: dict[str, Any] | None = None
) -> str | None:
    """Why the server ended, as a lower-case clause ("the server ran out of memory (limit 4 GiB)");
    None while it starts or runs.

    `pod` is the pod now, None once it is gone. `last_seen` is the pod as last seen before it
    went (optional): an ended pod that was then deleted keeps its reason (evicted, deadline).
    A pod deleted on its own gets the reason from its events (evicted, preempted, its node
    lost), else "the server's pod was deleted". A pod being deleted (deletionTimestamp) counts
    as deleted at once, unless it had ended already. An image that cannot be pulled, or a
    container that cannot be made, is an end: waiting for it would not help.
    """
    if pod is None:
        earlier = pod_end(last_seen, events) if last_seen is not None else None
        if earlier is not None and earlier != DELETED:
            return earlier
        return _removed_by(_own_events(last_seen, events)) or DELETED
    own = _own_events(pod, events)
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if status.get("reason") == "Evicted":
        return f"the server's pod was evicted from its node: {cut(status.get('message') or 'no reason given')}"
    if status.get("reason") == "DeadlineExceeded":
        deadline = spec.get("activeDeadlineSeconds")
        if isinstance(deadline, int):
            return f"the server reached its wall time of {format_walltime(deadline)}"
        return "the server reached its wall time"
    images = {c.get("name"): c.get("image", "") for c in spec.get("containers") or []}
    containers = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for container in containers:
        image = images.get(container.get("name")) or container.get("image", "")
        if failure := _container_failure(pod, container, image, own):
            return failure
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return _removed_by(own) or DELETED
    for container in containers:
        if exited := _container_exit(container):
            return exited
    if status.get("phase") == "Failed":
        said = ": ".join(part for part in (status.get("reason"), status.get("message")) if part)
        return f"the server's pod failed: {cut(said)}" if said else "the server's pod failed"
    if status.get("phase") == "Succeeded":
        return "the server ended"
    return None


# ---- refusals -------------------------------------------------------------------------------

_QUOTA = re.compile(
    r"exceeded quota: (?P<quota>[^,]+), requested: (?P<requested>\S+), used: (?P<used>\S+), limited: (?P<limited>\S+)"
)
_QUOTA_UNSPECIFIED = re.compile(r"failed quota: (?P<quota>[^:]+): (?P<why>.*)", re.DOTALL)
_WEBHOOK = re.compile(r'admission webhook "(?P<name>[^"]*)" denied the request:? ?(?P<why>.*)', re.DOTALL)
_KIND_WORDS = {"pods": "pod", "persistentvolumeclaims": "volume claim", "namespaces": "namespace"}


def _pairs(text: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in text.split(",") if "=" in pair)


def _quota_words(match: re.Match[str]) -> str:
    requested, used, limited = _pairs(match["requested"]), _pairs(match["used"]), _pairs(match["limited"])
    said: list[str] = []
    for key, amount in requested.items():
        resource = key.removeprefix("requests.").removeprefix("limits.")
        line = f"requested {resource} {amount}, used {used.get(key, '0')}, limit {limited.get(key, '?')}"
        if line not in said:
            said.append(line)
    return f"The Kubernetes quota of this namespace does not allow it: {'; '.join(said)} (quota {match['quota']})"


def _status_body(body: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(body, dict):
        return body
    try:
        parsed = json.loads(body)
    except ValueError:
        return {"message": body}
    return parsed if isinstance(parsed, dict) else {"message": body}


def api_refusal(status: int, body: str | dict[str, Any]) -> str:
    """A refused Kubernetes API call in words (a sentence): `body` is its Status, as JSON text or parsed.

    Quota exceeded, quota needing limits, admission webhooks and PodSecurity, missing RBAC
    permissions, invalid objects (with each cause), names taken; anything else as its code,
    reason and message.
    """
    answer = _status_body(body)
    message = str(answer.get("message") or "")
    details = answer.get("details") or {}
    what = _KIND_WORDS.get(str(details.get("kind", "")), str(details.get("kind") or "object"))
    if match := _QUOTA.search(message):
        return _quota_words(match)
    if match := _QUOTA_UNSPECIFIED.search(message):
        return f"The Kubernetes quota of this namespace does not allow it: {cut(match['why'])} (quota {match['quota']})"
    if match := _WEBHOOK.search(message):
        return f"Kubernetes refused it (admission webhook {match['name']}): {cut(match['why'])}"
    if status == 403 and " is forbidden: " in message:
        why = message.split(" is forbidden: ", 1)[1]
        if why.startswith("User ") and " cannot " in why:
            return f"The hub is not allowed to do this in Kubernetes (an administrator must grant it): {cut(why)}"
        return f"Kubernetes refused it: {cut(why)}"
    if status == 422 or answer.get("reason") == "Invalid":
        causes = [
            f"{c['field']}: {c.get('message', '')}" if c.get("field") else str(c.get("message", ""))
            for c in details.get("causes") or []
        ]
        why = "; ".join(causes) if causes else message.split(" is invalid: ", 1)[-1]
        return f"Kubernetes refused the {what} as invalid: {cut(why)}"
    if status == 409 and answer.get("reason") == "AlreadyExists":
        name = details.get("name")
        return f"Kubernetes already has a {what} named {name}" if name else f"Kubernetes: {cut(message)}"
    reason = answer.get("reason")
    head = f"Kubernetes answered {status}" + (f" ({reason})" if reason else "")
    return f"{head}: {cut(message)}" if message else head
