"""The Kubernetes form fragments: a profile's widgets and the node pools' availability."""

from __future__ import annotations

import re
import shutil
import subprocess
from types import SimpleNamespace

import pytest
from jinja2 import ChoiceLoader, Environment, PackageLoader, PrefixLoader, select_autoescape

from daas_core.quantities import format_memory, format_walltime


@pytest.fixture(scope="module")
def env() -> Environment:
    """As form.template_environment builds it, without the backend registry: shared widgets + kubernetes/."""
    loader = ChoiceLoader(
        [
            PackageLoader("daas_spawner", "templates"),
            PrefixLoader({"kubernetes": PackageLoader("daas_spawner.backends.kubernetes", "templates")}),
        ]
    )
    environment = Environment(loader=loader, autoescape=select_autoescape(default=True, default_for_string=True))
    environment.filters["memory"] = format_memory
    environment.filters["walltime"] = format_walltime
    return environment


def profile(gpus=True, features=("x86_64", "power9"), environments=2):
    resources = SimpleNamespace(
        cores=SimpleNamespace(presets={"min": 1, "medium": 4, "max": 16}, whole_node=True, max=32, default="medium"),
        memory=SimpleNamespace(min=512, default=8192, max=65536),
        gpus=SimpleNamespace(max=2, default=0) if gpus else None,
        walltime=SimpleNamespace(choices=[3600, 14400], default=3600, max=43200),
        features=list(features),
    )
    envs = [SimpleNamespace(id=f"env{i}", display_name=f"Env <{i}>") for i in range(environments)]
    return SimpleNamespace(id="k8s", display_name="Pods", resources=resources, environments=envs)


def options(env, prof, chosen=None, chosen_profile="k8s"):
    template = env.get_template("kubernetes/options.html")
    return template.render(profile=prof, p=prof.id, chosen=chosen or {}, chosen_profile=chosen_profile)


def names(page):
    return sorted(set(re.findall(r'name="([^"]+)"', page)))


def test_options_name_every_widget_after_the_profile(env):
    page = options(env, profile())
    assert names(page) == [
        "k8s.cores",
        "k8s.cores_custom",
        "k8s.environment",
        "k8s.feature",
        "k8s.gpus",
        "k8s.memory",
        "k8s.walltime",
        "k8s.walltime_custom",
    ]
    for preset in ("min", "medium", "max", "whole_node"):
        assert f'name="k8s.cores" value="{preset}"' in page
    assert 'value="medium" checked' in page  # the profile's default
    assert '<option value="1:00:00" selected>' in page and '<option value="4:00:00">' in page
    assert "up to 12:00:00" in page
    assert 'placeholder="8G"' in page and "512M to 64G" in page
    assert all(f'<option value="{n}"' in page for n in range(3)) and '<option value="3"' not in page
    assert '<option value="power9">power9</option>' in page
    assert "Env &lt;1&gt;" in page  # escaped
    assert '<details class="daas-advanced">' in page  # closed: nothing advanced was chosen


def test_options_leave_out_what_the_profile_does_not_offer(env):
    page = options(env, profile(gpus=False, features=(), environments=1))
    assert names(page) == ["k8s.cores", "k8s.cores_custom", "k8s.memory", "k8s.walltime", "k8s.walltime_custom"]


def test_chosen_values_preselect_and_open_advanced(env):
    chosen = {"profile": "k8s", "cores": "whole_node", "gpus": "2", "feature": "power9", "memory": "4G"}
    page = options(env, profile(), chosen)
    assert 'value="whole_node" checked' in page
    assert '<option value="2" selected>' in page
    assert '<option value="power9" selected>' in page
    assert 'value="4G"' in page
    assert '<details class="daas-advanced" open>' in page


def test_values_chosen_for_another_profile_do_not_preselect(env):
    page = options(env, profile(), {"profile": "other", "gpus": "2"}, chosen_profile="other")
    assert '<option value="0" selected>' in page and '<option value="2" selected>' not in page


AVAILABILITY = {
    "taken_at": "2026-11-22T04:00:00Z",
    "stale": False,
    "pools": {
        "gpu": {
            "nodes_ready": 1,
            "nodes_total": 2,
            "cpu_free": 0.0,
            "cpu_total": 11.9,
            "memory_free_mb": 1536,
            "memory_total_mb": 49152,
            "gpus_free": 1,
            "gpus_total": 6,
        },
        "default": {
            "nodes_ready": 3,
            "nodes_total": 3,
            "cpu_free": 9.4,
            "cpu_total": 48.0,
            "memory_free_mb": 16384,
            "memory_total_mb": 196608,
            "gpus_free": 0,
            "gpus_total": 0,
        },
    },
}


def availability(env, answer):
    return env.get_template("kubernetes/availability.html").render(
        backend_profiles=[profile()], backend_availability=answer
    )


def rows(page):
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
        for row in re.findall(r"<tr data-pool=.*?</tr>", page, re.DOTALL)
    ]


def test_availability_lists_each_pool(env):
    page = availability(env, AVAILABILITY)
    assert rows(page) == [
        "default 3 / 3 9.4 / 48 — 16G of 192G",
        "gpu 1 / 2 0 / 11.9 (full: new servers wait) 1 / 6 1536M of 48G",
    ]
    assert "(as of 2026-11-22T04:00:00Z)" in page
    assert 'answer["kubernetes"]' in page


def test_availability_stale_and_unknown(env):
    assert "the Kubernetes API is not answering" in availability(env, dict(AVAILABILITY, stale=True))
    for answer in (None, {"pools": {}, "taken_at": "2026-11-22T04:00:00Z", "stale": True}):
        page = availability(env, answer)
        assert "(no data yet)" in page and rows(page) == []


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to parse the script")
def test_the_refresh_script_parses(env, tmp_path):
    script = re.search(r"<script>(.*)</script>", availability(env, AVAILABILITY), re.DOTALL)[1]
    (tmp_path / "refresh.js").write_text(script)
    subprocess.run(["node", "--check", str(tmp_path / "refresh.js")], check=True)
