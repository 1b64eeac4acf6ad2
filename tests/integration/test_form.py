"""The spawn form behind a real hub, submitted as a browser with JavaScript off would."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from .conftest import SlurmHub, public_tempdir
from .html_form import browser_submission, choose
from .hub import Hub
from .slurm import job_details


@pytest.fixture
def alice(hub: Hub) -> Iterator[httpx.Client]:
    with hub.logged_in("alice") as client:
        yield client


def test_page_shows_only_her_profiles_and_the_availability_table(alice: httpx.Client) -> None:
    page = alice.get("/hub/spawn").text
    assert re.findall(r'name="profile"[^>]*value="([^"]+)"', page) == ["cpu", "gpu", "power9"]
    assert 'id="daas-availability"' in page
    for partition in ("cpu", "gpu", "power9"):
        assert f'data-partition="{partition}"' in page


def test_js_off_post_with_every_profiles_widgets_spawns_the_chosen_one(hub: Hub, alice: httpx.Client) -> None:
    action, fields = browser_submission(alice.get("/hub/spawn").text)
    assert any(name == "cpu.cores" for name, _ in fields)  # other profiles' widgets are posted too
    fields = choose(fields, profile="gpu", gpu__gpus="1", gpu__cores="medium", gpu__memory="3G")
    response = alice.post(action, data=dict(fields))
    assert response.status_code == 200, response.text[:500]
    hub.wait_ready("alice")
    job = job_details(hub.job_id("alice"))
    assert (job["Partition"], job["NumCPUs"]) == ("gpu", "2")
    assert job["TresPerNode"] == "gres:gpu:tesla:1"
    assert "mem=3G" in job["TRES"]


def test_advanced_overrides_take_precedence(hub: Hub, alice: httpx.Client) -> None:
    action, fields = browser_submission(alice.get("/hub/spawn").text)
    fields = choose(fields, profile="cpu", cpu__cores_custom="3", cpu__walltime_custom="2:30:00")
    assert alice.post(action, data=dict(fields)).status_code == 200
    hub.wait_ready("alice")
    job = job_details(hub.job_id("alice"))
    assert (job["NumCPUs"], job["TimeLimit"]) == ("3", "02:30:00")


def test_spawn_link_prefills_the_form_and_starts_nothing(slurm_hub: SlurmHub, alice: httpx.Client) -> None:
    before = slurm_hub.commands.count("sbatch")
    page = alice.get("/hub/spawn", params={"profile": "gpu", "gpus": "2", "walltime": "4:00:00"})
    assert page.status_code == 200
    assert "The link filled in the options below" in page.text
    assert 'id="daas-profile-gpu" value="gpu" checked' in page.text
    assert re.search(r'name="gpu.gpus"[^>]*>(?:(?!</select>).)*<option value="2" selected>', page.text, re.DOTALL)
    assert slurm_hub.commands.count("sbatch") == before
    assert slurm_hub.hub.server_model("alice") is None


def test_spawn_from_url_starts_only_for_links_followed_on_the_hub(slurm_cluster: None) -> None:
    """With spawn_from_url, a link on another site must not start a job billed to whoever opens it."""
    site = SlurmHub(public_tempdir("daas-links-"), extra_config="c.DaaSSpawner.spawn_from_url = True")
    site.start()
    try:
        with site.hub.logged_in("bob") as bob:
            link = {"profile": "cpu", "cores": "min"}
            for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {}):
                page = bob.get("/hub/spawn", params=link, headers=headers)
                assert page.status_code == 200 and "The link filled in the options below" in page.text, headers
            assert site.commands.count("sbatch") == 0 and site.hub.server_model("bob") is None
            page = bob.get("/hub/spawn", params=link, headers={"Sec-Fetch-Site": "same-origin"})
            assert page.status_code == 200
            site.hub.wait_ready("bob")
            assert site.commands.count("sbatch") == 1
            site.hub.stop_server("bob")
    finally:
        site.close()


def test_spawn_link_for_a_named_server_prefills_too(alice: httpx.Client) -> None:
    page = alice.get("/hub/spawn/alice/exp1", params={"opt-profile": "power9", "opt-cores": "max"})
    assert page.status_code == 200
    assert 'id="daas-profile-power9" value="power9" checked' in page.text


@pytest.mark.parametrize(
    "params, field",
    [({"profile": "gpu", "gpus": "9"}, "gpus"), ({"profile": "cpu", "cores": "$(id)"}, "cores"), ({"x": "1"}, "x")],
)
def test_spawn_link_with_bad_values_is_a_400(
    slurm_hub: SlurmHub, alice: httpx.Client, params: dict[str, str], field: str
) -> None:
    before = slurm_hub.commands.count("sbatch")
    page = alice.get("/hub/spawn", params=params)
    assert page.status_code == 400
    assert f"{field}:" in page.text
    assert slurm_hub.commands.count("sbatch") == before
