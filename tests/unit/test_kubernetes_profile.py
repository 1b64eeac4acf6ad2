"""Kubernetes profiles: what an admin may write, what a user may choose, and the request that comes out."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from daas_spawner.backends.kubernetes.profile import KubernetesProfile, KubernetesRequest, Toleration
from daas_spawner.options import OptionsError

from .conftest import DELETE, set_path

REPO = Path(__file__).resolve().parents[2]


def gpu_profile_raw() -> dict:
    """A GPU profile with two environments, whole node, and x86_64 / power9 choices."""
    return {
        "id": "gpu",
        "display_name": "GPU pod",
        "backend": "kubernetes",
        "environments": [
            {"id": "daas", "display_name": "DaaS Python"},
            {"id": "ml", "display_name": "Machine learning"},
        ],
        "kubernetes": {
            "images": {"daas": "registry.example.org/daas/lab:1.2", "ml": "registry.example.org/daas/ml@sha256:abc123"},
            "namespace": "daas-{proposal}",
            "node_selector": {"daas.io/pool": "gpu"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "priority_class": "daas-interactive",
        },
        "resources": {
            "cores": {"presets": {"min": 1, "medium": 4, "max": 8}, "whole_node": True, "max": 16},
            "memory": {"min": "512M", "default": "4G", "max": "32G"},
            "gpus": {"max": 2, "default": 1},
            "walltime": {"choices": ["1:00:00", "4:00:00"], "default": "1:00:00", "max": "12:00:00"},
            "features": ["x86_64", "power9"],
        },
    }


def changed(path: str, value, base: dict | None = None) -> dict:
    """The GPU profile (or `base`) with one value set ('kubernetes.images.daas'); DELETE removes it."""
    raw = copy.deepcopy(base or gpu_profile_raw())
    set_path(raw, path, value)
    return raw


@pytest.fixture(scope="module")
def gpu() -> KubernetesProfile:
    return KubernetesProfile.model_validate(gpu_profile_raw())


def test_the_gpu_profile_loads(gpu):
    settings = gpu.kubernetes
    assert settings.images["ml"] == "registry.example.org/daas/ml@sha256:abc123"
    assert settings.gpu_resource == "nvidia.com/gpu"
    assert settings.feature_selectors["power9"] == {"kubernetes.io/arch": "ppc64le"}
    assert settings.tolerations[0].as_api() == {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert gpu.resources.memory.default == 4096
    assert gpu.resources.walltime.max == 12 * 3600
    assert gpu.option_fields == ("cores", "memory", "gpus", "walltime", "feature")
    assert (gpu.form_template, gpu.availability_template) == ("kubernetes/options.html", "kubernetes/availability.html")


# (change to the valid GPU profile, the error's field path ("" for the whole profile), words the message must contain)
BAD_PROFILES = [
    ("backend", "slurm", "backend", "'kubernetes'"),
    ("resources", DELETE, "", "needs resources"),
    ("kubernetes", DELETE, "kubernetes", "Field required"),
    ("kubernetes.images", {"daas": "lab:1"}, "", "kubernetes.images has no image for environment ml"),
    ("kubernetes.images.box", "lab:1", "", "kubernetes.images names no environment of this profile: box"),
    ("kubernetes.images.daas", "lab:1 --privileged", "kubernetes.images.daas", "not an image reference"),
    ("kubernetes.images.daas", "lab:1\n", "kubernetes.images.daas", "not an image reference"),
    ("kubernetes.images.daas", "", "kubernetes.images.daas", "not an image reference"),
    ("kubernetes.images", {"daas;x": "lab:1"}, "kubernetes.images.daas;x.[key]", "pattern"),
    ("kubernetes.image_pull_policy", "Sometimes", "kubernetes.image_pull_policy", "'Always'"),
    ("kubernetes.namespace", "Daas-{proposal}", "kubernetes.namespace", "not a namespace"),
    ("kubernetes.namespace", "daas-{proposal}-{proposal}", "kubernetes.namespace", "at most one {proposal}"),
    ("kubernetes.namespace", "daas_users", "kubernetes.namespace", "DNS-1123 label"),
    ("kubernetes.namespace", "x" * 64, "kubernetes.namespace", "not a namespace"),
    ("kubernetes.namespace", "{user}", "kubernetes.namespace", "not a namespace"),
    ("kubernetes.node_selector", {"daas.io/pool": "gpu nodes"}, "kubernetes.node_selector.daas.io/pool", "label value"),
    ("kubernetes.node_selector", {"-pool": "gpu"}, "kubernetes.node_selector.-pool.[key]", "not a label key"),
    ("kubernetes.node_selector", {"Daas.IO/pool": "gpu"}, "kubernetes.node_selector.Daas.IO/pool.[key]", "label key"),
    ("kubernetes.node_selector", {"pool": "x" * 64}, "kubernetes.node_selector.pool", "label value"),
    ("kubernetes.tolerations.0.value", "yes", "kubernetes.tolerations.0", "an Exists toleration takes no value"),
    ("kubernetes.tolerations", [{"operator": "Equal", "value": "x"}], "kubernetes.tolerations.0", "needs a key"),
    ("kubernetes.tolerations.0.toleration_seconds", 60, "kubernetes.tolerations.0", "only for effect NoExecute"),
    ("kubernetes.tolerations.0.effect", "NoRun", "kubernetes.tolerations.0.effect", "'NoSchedule'"),
    ("kubernetes.tolerations.0.tolerationSeconds", 60, "kubernetes.tolerations.0.tolerationSeconds", "Extra inputs"),
    ("kubernetes.priority_class", "High_Priority", "kubernetes.priority_class", "not a DNS-1123 name"),
    ("kubernetes.gpu_resource", "gpu", "kubernetes.gpu_resource", "domain/name"),
    ("kubernetes.gpu_resource", "nvidia.com/mig 1g", "kubernetes.gpu_resource", "domain/name"),
    (
        "kubernetes.feature_selectors",
        {"power9": {}},
        "",
        "resources.features x86_64 not in kubernetes.feature_selectors",
    ),
    (
        "kubernetes.feature_selectors",
        {"x86_64": {}, "power9": {"kubernetes.io/arch": "ppc 64"}},
        "kubernetes.feature_selectors.power9.kubernetes.io/arch",
        "not a label value",
    ),
    ("kubernetes.service_account", "hub", "kubernetes.service_account", "Extra inputs"),
    ("resources.gpus.types", ["tesla"], "resources.gpus", "Kubernetes GPUs have no types"),
    ("resources.gpus.default", 3, "resources.gpus", "above max"),
    ("resources.partitions", ["gpu"], "resources.partitions", "Extra inputs"),
    ("resources.cores.max", 2, "resources.cores", "preset medium (4) is above max (2)"),
    ("resources.memory.default", "64G", "resources.memory", "min <= default <= max"),
    ("resources.walltime.max", "1:75:00", "resources.walltime.max", "above 59"),
    ("resources.features", ["sparc"], "", "resources.features sparc not in kubernetes.feature_selectors"),
    ("environments.0.image", "/images/lab.sif", "", "environment daas: image and apptainer_args are for Apptainer"),
]


def _error_text(err: ValidationError) -> dict[str, str]:
    """Field path -> message, for each error."""
    return {".".join(str(part) for part in error["loc"]): error["msg"] for error in err.errors()}


@pytest.mark.parametrize("path, value, field, words", BAD_PROFILES)
def test_bad_profile_names_the_field(path, value, field, words):
    with pytest.raises(ValidationError) as caught:
        KubernetesProfile.model_validate(changed(path, value))
    errors = _error_text(caught.value)
    assert field in errors, errors
    assert words in errors[field]


@pytest.mark.parametrize(
    "path, value",
    [
        ("kubernetes.namespace", "daas-users"),
        ("kubernetes.namespace", "{proposal}"),
        ("kubernetes.namespace", DELETE),
        ("kubernetes.gpu_resource", "nvidia.com/mig-1g.5gb"),
        ("kubernetes.node_selector", {"node.kubernetes.io/instance-type": "", "pool": "A_1.b"}),
        ("kubernetes.tolerations", [{"operator": "Exists"}]),
        ("kubernetes.tolerations", [{"key": "gpu", "value": "a100", "effect": "NoExecute", "toleration_seconds": 0}]),
        ("kubernetes.images.daas", "localhost:5000/daas/lab"),
        ("resources.gpus", DELETE),
        ("resources.features", []),
    ],
)
def test_good_profile_variants(path, value):
    assert KubernetesProfile.model_validate(changed(path, value)).id == "gpu"


def test_a_single_default_environment_needs_an_image_too():
    raw = changed("environments", DELETE)
    with pytest.raises(ValidationError, match="no image for environment default"):
        KubernetesProfile.model_validate(raw)
    raw["kubernetes"]["images"] = {"default": "lab:1"}
    assert KubernetesProfile.model_validate(raw).environments[0].id == "default"


def request(gpu: KubernetesProfile, **given) -> KubernetesRequest:
    return gpu.resolve_request(given)


# (user options, expected request fields)
GOOD_OPTIONS = [
    ({}, dict(cores=1, whole_node=False, memory_mb=4096, gpus=1, feature="x86_64", walltime_seconds=3600)),
    ({"cores": "medium", "memory": "8G"}, dict(cores=4, memory_mb=8192)),
    ({"cores": "12"}, dict(cores=12, whole_node=False)),
    ({"cores": 16}, dict(cores=16)),
    ({"cores": "whole_node"}, dict(cores=None, whole_node=True, memory_mb=None)),
    ({"memory": "512M"}, dict(memory_mb=512)),
    ({"memory": 1024}, dict(memory_mb=1024)),
    ({"gpus": "0"}, dict(gpus=0)),
    ({"gpus": 2}, dict(gpus=2)),
    ({"feature": "power9"}, dict(feature="power9")),
    ({"walltime": "4:00:00"}, dict(walltime_seconds=4 * 3600)),
    ({"walltime": "90"}, dict(walltime_seconds=90 * 60)),
    ({"walltime": "0-12:00:00"}, dict(walltime_seconds=12 * 3600)),
]


@pytest.mark.parametrize("given, expected", GOOD_OPTIONS)
def test_good_options(gpu, given, expected):
    resolved = gpu.resolve_request(given)
    assert {name: getattr(resolved, name) for name in expected} == expected
    assert resolved.kubernetes is gpu.kubernetes


# (user options, the field the error names, words the message must contain)
BAD_OPTIONS = [
    ({"cores": "17"}, "cores", "outside the allowed range 1..16"),
    ({"cores": "0"}, "cores", "outside the allowed range"),
    ({"cores": "huge"}, "cores", "not a whole number"),
    ({"cores": 2.5}, "cores", "whole number"),
    ({"cores": "whole_node", "memory": "8G"}, "memory", "cannot be set with whole_node"),
    ({"memory": "64G"}, "memory", "64G is outside the allowed range"),
    ({"memory": "256M"}, "memory", "outside the allowed range"),
    ({"memory": "lots"}, "memory", "not a size"),
    ({"gpus": "3"}, "gpus", "outside the allowed range 0..2"),
    ({"gpus": "-1"}, "gpus", "not a whole number"),
    ({"gpus": True}, "gpus", "whole number"),
    ({"walltime": "12:00:01"}, "walltime", "outside the allowed range"),
    ({"walltime": "0:00:30"}, "walltime", "outside the allowed range"),
    ({"walltime": "soon"}, "walltime", "not a duration"),
    ({"feature": "aarch64"}, "feature", "not offered by profile 'gpu' (choose from: x86_64, power9)"),
    ({"feature": ["power9"]}, "feature", "must be a string"),
]


@pytest.mark.parametrize("given, field, words", BAD_OPTIONS)
def test_bad_options_name_the_field(gpu, given, field, words):
    with pytest.raises(OptionsError) as caught:
        gpu.resolve_request(given)
    assert caught.value.field == field
    assert words in caught.value.message


@pytest.mark.parametrize(
    "path, value, given, field, words",
    [
        ("resources.cores.whole_node", False, {"cores": "whole_node"}, "cores", "whole_node is not offered"),
        ("resources.cores.presets", {"min": 1}, {"cores": "medium"}, "cores", "preset 'medium' is not offered"),
        ("resources.gpus", DELETE, {"gpus": "1"}, "gpus", "is not offered by profile 'gpu'"),
        ("resources.features", [], {"feature": "power9"}, "feature", "is not offered by profile 'gpu'"),
    ],
)
def test_options_a_profile_does_not_offer(path, value, given, field, words):
    profile = KubernetesProfile.model_validate(changed(path, value))
    with pytest.raises(OptionsError) as caught:
        profile.resolve_request(given)
    assert (caught.value.field, words in caught.value.message) == (field, True)


def test_without_gpus_or_features_the_request_has_none():
    profile = KubernetesProfile.model_validate(changed("resources.features", []))
    assert profile.resolve_request({}).feature is None
    no_gpus = KubernetesProfile.model_validate(changed("resources.gpus", DELETE))
    assert no_gpus.resolve_request({}).gpus == 0


def test_summary_leaves_out_the_admin_settings(gpu):
    summary = gpu.resolve_request({"memory": "1536M", "walltime": "90"}).summary()
    assert summary == {
        "cores": 1,
        "whole_node": False,
        "memory_mb": 1536,
        "memory": "1536M",
        "gpus": 1,
        "feature": "x86_64",
        "walltime_seconds": 5400,
        "walltime": "1:30:00",
    }
    whole = gpu.resolve_request({"cores": "whole_node"}).summary()
    assert "memory" not in whole and "cores" not in whole and whole["whole_node"] is True


@pytest.mark.parametrize(
    "namespace, proposal, expected",
    [
        (None, None, "daas-users"),
        (None, "20231234", "daas-users"),
        ("daas-pods", None, "daas-pods"),
        ("daas-{proposal}", "20231234", "daas-20231234"),
        ("daas-{proposal}", "MX-42", "daas-mx-42"),
        ("{proposal}", "abc", "abc"),
    ],
)
def test_namespace_for(namespace, proposal, expected):
    settings = KubernetesProfile.model_validate(changed("kubernetes.namespace", namespace)).kubernetes
    assert settings.namespace_for(proposal, default="daas-users") == expected


@pytest.mark.parametrize(
    "proposal, words",
    [
        (None, "one per proposal, and no proposal was chosen"),
        ("MX_42", "not a DNS-1123 label"),
        ("a.b", "not a DNS-1123 label"),
        ("x" * 60, "not a DNS-1123 label"),
        ("42-", "not a DNS-1123 label"),
    ],
)
def test_namespace_for_refuses(gpu, proposal, words):
    with pytest.raises(ValueError, match=words):
        gpu.kubernetes.namespace_for(proposal, default="daas-users")


@pytest.mark.parametrize(
    "namespace, requires",
    [("daas-{proposal}", True), ("daas-pods", False), (DELETE, False)],
)
def test_a_namespace_per_proposal_requires_a_proposal(namespace, requires):
    assert KubernetesProfile.model_validate(changed("kubernetes.namespace", namespace)).requires_proposal is requires


@pytest.mark.parametrize(
    "feature, expected",
    [
        (None, {"daas.io/pool": "gpu"}),
        ("power9", {"daas.io/pool": "gpu", "kubernetes.io/arch": "ppc64le"}),
        ("x86_64", {"daas.io/pool": "gpu", "kubernetes.io/arch": "amd64"}),
    ],
)
def test_node_selector_for_a_feature(gpu, feature, expected):
    assert gpu.kubernetes.node_selector_for(feature) == expected


def test_toleration_in_api_shape():
    toleration = Toleration(key="gpu", value="a100", effect="NoExecute", toleration_seconds=30)
    assert toleration.as_api() == {
        "key": "gpu",
        "operator": "Equal",
        "value": "a100",
        "effect": "NoExecute",
        "tolerationSeconds": 30,
    }


def example_profiles() -> dict:
    return yaml.safe_load((REPO / "profiles" / "kubernetes.yaml").read_text())


def test_the_example_file_loads_profile_by_profile():
    raw = example_profiles()
    assert set(raw) == {"default_profile", "profiles"}
    profiles = {entry["id"]: KubernetesProfile.model_validate(entry) for entry in raw["profiles"]}
    assert list(profiles) == ["k8s-cpu", "k8s-gpu", "k8s-power9"]
    assert raw["default_profile"] in profiles

    gpu = profiles["k8s-gpu"].resolve_request({})
    assert (gpu.gpus, gpu.kubernetes.gpu_resource, profiles["k8s-gpu"].requires_proposal) == (1, "nvidia.com/gpu", True)
    assert gpu.kubernetes.namespace_for("20231234", default="daas") == "daas-20231234"

    power9 = profiles["k8s-power9"].resolve_request({})
    assert power9.kubernetes.node_selector_for(power9.feature) == {"kubernetes.io/arch": "ppc64le"}

    cpu = profiles["k8s-cpu"].resolve_request({"cores": "whole_node"})
    assert (cpu.cores, cpu.memory_mb, cpu.gpus, cpu.walltime_seconds) == (None, None, 0, 3600)
    assert cpu.kubernetes.node_selector_for(cpu.feature) == {"daas.io/pool": "cpu"}
