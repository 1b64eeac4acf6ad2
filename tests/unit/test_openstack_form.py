"""The form's OpenStack part: sizes with what Nova gives for each, the quota left, and posts read back."""

from __future__ import annotations

import re

from daas_spawner.form import form_to_options, render_form, template_environment
from daas_spawner.options import UserAccess, resolve_options

AVAILABILITY = {
    "openstack": {
        "partitions": {
            "daas.small": {"vcpus": 2, "ram_mb": 4096, "gpus": 0, "disk_gb": 10, "room": 0},
            "daas.gpu.a100": {"vcpus": 8, "ram_mb": 32768, "gpus": 1, "disk_gb": 20, "room": 2},
        },
        "taken_at": "2026-12-04T19:00:00+00:00",
        "stale": False,
        "error": None,
    }
}


def size_labels(page: str) -> dict[str, str]:
    """The text of each size's label, by flavor, whitespace folded."""
    labels = re.findall(r'<label data-flavor="([^"]+)">(.*?)</label>', page, re.DOTALL)
    return {flavor: " ".join(re.sub(r"<[^>]+>", " ", text).split()) for flavor, text in labels}


def test_sizes_show_vcpus_memory_gpus_and_a_used_up_quota(site):
    page = render_form(template_environment(), [site.get("vm")], AVAILABILITY)
    assert size_labels(page) == {
        "daas.small": "daas.small (2 vCPUs, 4G) (the project's quota is used up)",
        "daas.gpu.a100": "daas.gpu.a100 (8 vCPUs, 32G, 1 GPU)",
    }
    assert 'name="vm.flavor" value="daas.small" checked' in page
    rows = re.findall(r'<tr data-flavor="([^"]+)">', page)
    assert rows == ["daas.gpu.a100", "daas.small"]
    assert "(quota used up)" in page


def test_without_availability_the_sizes_are_listed_by_name(site):
    page = render_form(template_environment(), [site.get("vm")], None)
    assert size_labels(page) == {"daas.small": "daas.small", "daas.gpu.a100": "daas.gpu.a100"}
    assert "(no data yet)" in page


def test_a_posted_size_and_lifetime_resolve(site):
    form = {"profile": ["vm"], "vm.flavor": ["daas.gpu.a100"], "vm.walltime": ["4:00:00"], "cpu.cores": ["max"]}
    options = form_to_options(form, site.profiles)
    assert options == {"profile": "vm", "flavor": "daas.gpu.a100", "walltime": "4:00:00"}
    assert resolve_options(options, site, UserAccess()).summary() == {
        "profile": "vm",
        "environment": "default",
        "flavor": "daas.gpu.a100",
        "walltime": "4:00:00",
    }
