"""What the Kubernetes backend tells a scientist: progress, why a server ended, why the API refused."""

from __future__ import annotations

import copy
import json

import pytest

from daas_spawner.backends.base import ProgressEvent
from daas_spawner.backends.kubernetes.status import api_refusal, pod_end, pod_progress, scheduling_words

UID = "0b5e-uid"


def make_pod(phase="Pending", node=None, selector=None, statuses=None, reason=None, message=None, **extra):
    """A server pod as the watch keeps it: 4 cores, 8 GiB, 2 GPUs."""
    pod = {
        "metadata": {"name": "jupyter-alice", "namespace": "daas", "uid": UID},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "registry.example/daas/lab:1",
                    "resources": {
                        "requests": {"cpu": "4", "memory": "8Gi"},
                        "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "2"},
                    },
                }
            ],
            "activeDeadlineSeconds": 3600,
            "nodeSelector": selector or {},
        },
        "status": {"phase": phase},
    }
    if node:
        pod["spec"]["nodeName"] = node
    if statuses is not None:
        pod["status"]["containerStatuses"] = [{"name": "notebook", "state": state} for state in statuses]
    if reason:
        pod["status"]["reason"] = reason
    if message:
        pod["status"]["message"] = message
    for key, value in extra.items():
        pod["metadata" if key == "deletionTimestamp" else "status"][key] = value
    return pod


def event(reason, message="", at="2026-11-22T04:00:00Z", uid=UID, kind="Normal", **times):
    return {
        "involvedObject": {"kind": "Pod", "name": "jupyter-alice", "uid": uid},
        "reason": reason,
        "message": message,
        "type": kind,
        "lastTimestamp": at,
        "count": 1,
        **times,
    }


# ---- the scheduler's summary ----------------------------------------------------------------


@pytest.mark.parametrize(
    "message, selector, words",
    [
        (  # kube-scheduler 1.20
            "0/3 nodes are available: 1 Insufficient cpu, 2 Insufficient nvidia.com/gpu.",
            None,
            "1 of 3 nodes has fewer than 4 free cores; 2 of 3 nodes have fewer than 2 free GPUs (nvidia.com/gpu)",
        ),
        (
            "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            None,
            "no node has 2 free GPUs (nvidia.com/gpu)",
        ),
        (
            "0/2 nodes are available: 2 Insufficient memory.",
            None,
            "no node has 8 GiB of free memory",
        ),
        (
            "0/3 nodes are available: 1 Insufficient memory, 2 Insufficient cpu.",
            None,
            "1 of 3 nodes has less than 8 GiB of free memory; 2 of 3 nodes have fewer than 4 free cores",
        ),
        (
            "0/4 nodes are available: 4 node(s) didn't match node selector.",
            {"kubernetes.io/arch": "ppc64le"},
            "all 4 nodes are not of the chosen architecture (ppc64le)",
        ),
        (  # 1.21 and newer
            "0/4 nodes are available: 3 node(s) didn't match Pod's node affinity/selector, 1 Insufficient cpu.",
            {"kubernetes.io/arch": "ppc64le"},
            "3 of 4 nodes are not of the chosen architecture (ppc64le); 1 of 4 nodes has fewer than 4 free cores",
        ),
        (
            "0/1 nodes are available: 1 node(s) didn't match node selector.",
            {"kubernetes.io/arch": "arm64", "daas.io/pool": "gpu"},
            "the only node is not among the nodes this profile runs on (daas.io/pool=gpu, kubernetes.io/arch=arm64)",
        ),
        (  # 1.20: the taint's ", that the pod ..." is not a new reason
            "0/3 nodes are available: 1 node(s) had taint {node-role.kubernetes.io/master: }, that the pod "
            "didn't tolerate, 2 node(s) had taint {node.kubernetes.io/not-ready: }, that the pod didn't tolerate.",
            None,
            "1 of 3 nodes is reserved for the control plane; 2 of 3 nodes are not ready",
        ),
        (  # newer: untolerated taint, and a preemption verdict to drop
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. "
            "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
            "2 No preemption victims found for incoming pod..",
            None,
            "1 of 3 nodes is reserved for other uses (taint dedicated=gpu); 2 of 3 nodes have fewer than 4 free cores",
        ),
        (
            "0/2 nodes are available: 2 node(s) were unschedulable.",
            None,
            "both nodes are closed to new pods (cordoned)",
        ),
        (
            "0/3 nodes are available: 1 Too many pods, 2 node(s) had volume node affinity conflict.",
            None,
            "1 of 3 nodes is full (no room for another pod); 2 of 3 nodes are unable to reach the server's volumes",
        ),
        (  # 1.20 counts the pre-filter verdict; newer ones do not
            "0/3 nodes are available: 3 pod has unbound immediate PersistentVolumeClaims.",
            None,
            "the server's volume claims are not bound to a volume yet",
        ),
        (
            "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are "
            "available: 3 Preemption is not helpful for scheduling..",
            None,
            "the server's volume claims are not bound to a volume yet",
        ),
        (  # unknown reasons pass through, counted
            "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules.",
            None,
            "2 node(s) didn't match pod anti-affinity rules",
        ),
        ("no nodes available to schedule pods", None, "the cluster has no nodes"),
        ("skip schedule deleting pod: daas/jupyter-alice", None, "skip schedule deleting pod: daas/jupyter-alice"),
    ],
)
def test_scheduling_words(message, selector, words):
    assert scheduling_words(message, make_pod(selector=selector)) == words


def test_scheduling_words_for_a_fraction_of_a_core_and_odd_memory():
    pod = make_pod()
    pod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "500m", "memory": "1536Mi"}}
    message = "0/2 nodes are available: 2 Insufficient cpu, 2 Insufficient memory."
    assert scheduling_words(message, pod) == "no node has 0.5 free cores; no node has 1536 MiB of free memory"


def test_scheduling_words_without_the_pod_say_enough():
    assert scheduling_words("0/3 nodes are available: 1 Insufficient cpu.") == "1 of 3 nodes has not enough free cores"


def test_an_unknown_message_is_cut():
    words = scheduling_words("x" * 1000)
    assert len(words) == 300 and words.endswith("…")


# ---- progress -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pod, events, expected",
    [
        (make_pod(), [], ProgressEvent(20, "Pod jupyter-alice created, waiting for the scheduler")),
        (
            make_pod(),
            [
                event("FailedScheduling", "0/3 nodes are available: 3 Insufficient cpu.", at="2026-11-22T04:00:05Z"),
                event("FailedScheduling", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."),
            ],
            ProgressEvent(20, "Waiting for a node: no node has 4 free cores"),
        ),
        (  # events of an earlier pod of the same name do not count
            make_pod(),
            [event("FailedScheduling", "0/3 nodes are available: 3 Insufficient cpu.", uid="old")],
            ProgressEvent(20, "Pod jupyter-alice created, waiting for the scheduler"),
        ),
        (  # no event yet, but the condition has the scheduler's verdict
            make_pod(
                conditions=[
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                    }
                ]
            ),
            [],
            ProgressEvent(20, "Waiting for a node: no node has 2 free GPUs (nvidia.com/gpu)"),
        ),
        (
            make_pod(node="gpu01"),
            [event("FailedScheduling", "0/3 nodes are available: 3 Insufficient cpu."), event("Scheduled")],
            ProgressEvent(40, "Assigned to node gpu01"),
        ),
        (
            make_pod(node="gpu01"),
            [event("Scheduled"), event("Pulling", 'Pulling image "registry.example/daas/lab:1"')],
            ProgressEvent(50, "Pulling the image registry.example/daas/lab:1 on node gpu01"),
        ),
        (  # same second, listed out of order: the later stage wins
            make_pod(node="gpu01"),
            [event("Pulled"), event("Pulling"), event("Scheduled")],
            ProgressEvent(60, "Image ready on node gpu01, starting the server"),
        ),
        (  # eventTime (newer clients) is compared with lastTimestamp
            make_pod(node="gpu01"),
            [
                event("Pulling", at="2026-11-22T04:00:09Z"),
                event("Started", at=None, eventTime="2026-11-22T04:00:10.5Z"),
            ],
            ProgressEvent(60, "Server started on node gpu01"),
        ),
        (
            make_pod(node="gpu01"),
            [event("FailedMount", 'MountVolume.SetUp failed for volume "raw"', kind="Warning")],
            ProgressEvent(
                40,
                'Assigned to node gpu01, waiting for its volumes: MountVolume.SetUp failed for volume "raw"',
            ),
        ),
        (
            make_pod("Running", node="gpu01", statuses=[{"running": {"startedAt": "2026-11-22T04:00:12Z"}}]),
            [event("Started")],
            ProgressEvent(80, "Started on node gpu01, waiting for JupyterLab"),
        ),
    ],
)
def test_pod_progress(pod, events, expected):
    assert pod_progress(pod, events) == expected


@pytest.mark.parametrize("pod", [None, make_pod("Failed"), make_pod("Succeeded")])
def test_no_progress_without_a_live_pod(pod):
    assert pod_progress(pod, [event("Started")]) is None


# ---- ends -----------------------------------------------------------------------------------

OOM = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}


@pytest.mark.parametrize(
    "pod, events, words",
    [
        (make_pod(), [], None),
        (make_pod("Running", node="n1", statuses=[{"running": {}}]), [], None),
        (make_pod("Pending", node="n1", statuses=[{"waiting": {"reason": "ContainerCreating"}}]), [], None),
        (make_pod("Unknown", node="n1"), [], None),  # a node out of touch may come back
        (
            make_pod(
                "Failed",
                reason="Evicted",
                message="The node was low on resource: memory. Container notebook was using 9Gi, which exceeds "
                "its request of 8Gi. ",
            ),
            [],
            "the server's pod was evicted from its node: The node was low on resource: memory. Container notebook "
            "was using 9Gi, which exceeds its request of 8Gi.",
        ),
        (make_pod("Failed", node="n1", statuses=[OOM]), [], "the server ran out of memory (limit 8 GiB)"),
        (
            make_pod(
                "Failed",
                reason="DeadlineExceeded",
                message="Pod was active on the node longer than the specified deadline",
                statuses=[{"terminated": {"reason": "Error", "exitCode": 143}}],
            ),
            [],
            "the server reached its wall time of 1:00:00",
        ),
        (
            make_pod(statuses=[{"waiting": {"reason": "ErrImagePull", "message": "rpc error: not found"}}]),
            [],
            "the image registry.example/daas/lab:1 cannot be pulled: rpc error: not found",
        ),
        (  # the back-off's message is the image again: the Failed event says why
            make_pod(
                statuses=[
                    {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "registry..."'}}
                ]
            ),
            [
                event("Failed", 'Failed to pull image "registry.example/daas/lab:1": rpc error: code = NotFound'),
                event("Failed", "Error: ErrImagePull"),
            ],
            "the image registry.example/daas/lab:1 cannot be pulled: rpc error: code = NotFound",
        ),
        (
            make_pod(statuses=[{"waiting": {"reason": "InvalidImageName", "message": "couldn't parse image"}}]),
            [],
            "the image registry.example/daas/lab:1 cannot be pulled: couldn't parse image",
        ),
        (
            make_pod(
                statuses=[{"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "x" not found'}}]
            ),
            [],
            'the server\'s container cannot be set up: secret "x" not found',
        ),
        (
            make_pod(statuses=[{"waiting": {"reason": "CreateContainerError", "message": "no such mount"}}]),
            [],
            "the server's container cannot be created: no such mount",
        ),
        (
            make_pod(
                "Failed",
                statuses=[{"terminated": {"reason": "StartError", "exitCode": 128, "message": "exec: not found"}}],
            ),
            [],
            "the server cannot start: exec: not found",
        ),
        (
            make_pod("Failed", statuses=[{"terminated": {"reason": "Error", "exitCode": 3}}]),
            [],
            "the server exited with code 3",
        ),
        (
            make_pod("Failed", statuses=[{"terminated": {"reason": "Error", "exitCode": 137}}]),
            [],
            "the server was killed by signal 9 (exit code 137)",
        ),
        (
            make_pod("Succeeded", statuses=[{"terminated": {"reason": "Completed", "exitCode": 0}}]),
            [],
            "the server exited with code 0",
        ),
        (
            make_pod(
                "Failed", reason="Terminated", message="Pod was terminated in response to imminent node shutdown."
            ),
            [],
            "the server's pod failed: Terminated: Pod was terminated in response to imminent node shutdown.",
        ),
        (make_pod("Failed"), [], "the server's pod failed"),
        (make_pod("Succeeded"), [], "the server ended"),
        (  # being deleted: at once, and not "exited with code 143"
            make_pod(
                "Running",
                statuses=[{"terminated": {"reason": "Error", "exitCode": 143}}],
                deletionTimestamp="2026-11-22T05:00:00Z",
            ),
            [],
            "the server's pod was deleted",
        ),
        (
            make_pod("Running", statuses=[{"running": {}}], deletionTimestamp="2026-11-22T05:00:00Z"),
            [event("Preempted", "Preempted by daas/other on node gpu01")],
            "the server's pod was preempted: Kubernetes made room for a pod of higher priority",
        ),
        (None, [], "the server's pod was deleted"),
        (
            None,
            [event("TaintManagerEviction", "Marking for deletion Pod daas/jupyter-alice")],
            "the server's node became unavailable, and Kubernetes removed its pod",
        ),
    ],
)
def test_pod_end(pod, events, words):
    assert pod_end(pod, events) == words


def test_a_deleted_pod_keeps_the_reason_it_ended_with():
    last_seen = make_pod("Failed", reason="DeadlineExceeded")
    assert pod_end(None, [], last_seen) == "the server reached its wall time of 1:00:00"


def test_a_deleted_pod_that_ran_is_deleted():
    last_seen = make_pod("Running", statuses=[{"running": {}}])
    assert (
        pod_end(None, [event("Evicted", "other pod's event", uid="old")], last_seen) == "the server's pod was deleted"
    )


def test_oom_without_a_limit():
    pod = make_pod("Failed", statuses=[OOM])
    del pod["spec"]["containers"][0]["resources"]["limits"]["memory"]
    assert pod_end(pod, []) == "the server ran out of memory"


def test_the_pod_is_not_changed():
    pod = make_pod("Failed", statuses=[OOM])
    kept = copy.deepcopy(pod)
    pod_end(pod, [])
    pod_progress(pod, [])
    assert pod == kept


# ---- refusals -------------------------------------------------------------------------------


def status_body(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason}
    body["code"] = code
    if details is not None:
        body["details"] = details
    return body


@pytest.mark.parametrize(
    "code, body, words",
    [
        (
            403,
            status_body(
                403,
                "Forbidden",
                'pods "jupyter-alice" is forbidden: exceeded quota: q, requested: limits.cpu=4, used: limits.cpu=4, '
                "limited: limits.cpu=6",
            ),
            "The Kubernetes quota of this namespace does not allow it: requested cpu 4, used 4, limit 6 (quota q)",
        ),
        (
            403,
            status_body(
                403,
                "Forbidden",
                'pods "jupyter-alice" is forbidden: exceeded quota: compute, requested: limits.cpu=4,limits.memory=8Gi,'
                "requests.cpu=4, used: limits.cpu=4,limits.memory=12Gi,requests.cpu=4, limited: limits.cpu=6,"
                "limits.memory=16Gi,requests.cpu=6",
            ),
            "The Kubernetes quota of this namespace does not allow it: requested cpu 4, used 4, limit 6; "
            "requested memory 8Gi, used 12Gi, limit 16Gi (quota compute)",
        ),
        (
            403,
            status_body(
                403,
                "Forbidden",
                'persistentvolumeclaims "home-alice" is forbidden: exceeded quota: storage, requested: '
                "requests.storage=10Gi, used: requests.storage=95Gi, limited: requests.storage=100Gi",
            ),
            "The Kubernetes quota of this namespace does not allow it: requested storage 10Gi, used 95Gi, "
            "limit 100Gi (quota storage)",
        ),
        (
            403,
            status_body(
                403,
                "Forbidden",
                'pods "jupyter-alice" is forbidden: failed quota: compute: must specify limits.cpu,limits.memory',
            ),
            "The Kubernetes quota of this namespace does not allow it: must specify limits.cpu,limits.memory "
            "(quota compute)",
        ),
        (
            403,
            status_body(
                403,
                "Forbidden",
                'pods "jupyter-alice" is forbidden: violates PodSecurity "restricted:latest": seccompProfile '
                '(pod or container "notebook" must set securityContext.seccompProfile.type)',
            ),
            'Kubernetes refused it: violates PodSecurity "restricted:latest": seccompProfile (pod or container '
            '"notebook" must set securityContext.seccompProfile.type)',
        ),
        (
            400,
            status_body(
                400, "BadRequest", 'admission webhook "policy.example.org" denied the request: GPUs need a proposal'
            ),
            "Kubernetes refused it (admission webhook policy.example.org): GPUs need a proposal",
        ),
        (
            403,
            status_body(
                403,
                "Forbidden",
                'pods is forbidden: User "system:serviceaccount:hub:hub" cannot create resource "pods" in API group '
                '"" in the namespace "p-42"',
            ),
            "The hub is not allowed to do this in Kubernetes (an administrator must grant it): User "
            '"system:serviceaccount:hub:hub" cannot create resource "pods" in API group "" in the namespace "p-42"',
        ),
        (
            422,
            status_body(
                422,
                "Invalid",
                'Pod "jupyter-alice" is invalid: spec.containers[0].image: Required value',
                {
                    "name": "jupyter-alice",
                    "kind": "pods",
                    "causes": [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value",
                            "field": "spec.containers[0].image",
                        },
                        {
                            "reason": "FieldValueInvalid",
                            "message": "Invalid value: -1",
                            "field": "spec.activeDeadlineSeconds",
                        },
                    ],
                },
            ),
            "Kubernetes refused the pod as invalid: spec.containers[0].image: Required value; "
            "spec.activeDeadlineSeconds: Invalid value: -1",
        ),
        (
            422,
            status_body(
                422,
                "Invalid",
                'PersistentVolumeClaim "home-alice" is invalid: spec: bad',
                {"kind": "persistentvolumeclaims"},
            ),
            "Kubernetes refused the volume claim as invalid: spec: bad",
        ),
        (
            409,
            status_body(
                409, "AlreadyExists", 'pods "jupyter-alice" already exists', {"name": "jupyter-alice", "kind": "pods"}
            ),
            "Kubernetes already has a pod named jupyter-alice",
        ),
        (
            404,
            status_body(404, "NotFound", 'namespaces "p-42" not found'),
            'Kubernetes answered 404 (NotFound): namespaces "p-42" not found',
        ),
        (503, "upstream connect error", "Kubernetes answered 503: upstream connect error"),
        (500, "", "Kubernetes answered 500"),
    ],
)
def test_api_refusal(code, body, words):
    assert api_refusal(code, body) == words


def test_a_refusal_as_json_text_reads_like_the_parsed_one():
    body = status_body(409, "AlreadyExists", 'pods "x" already exists', {"name": "x", "kind": "pods"})
    assert api_refusal(409, json.dumps(body)) == api_refusal(409, body) == "Kubernetes already has a pod named x"


def test_a_long_refusal_is_cut():
    words = api_refusal(500, status_body(500, "InternalError", "boom " * 500))
    assert words.startswith("Kubernetes answered 500 (InternalError): boom boom") and words.endswith("…")
    assert len(words) < 400
