"""Metrics on a real hub: /hub/metrics after a Slurm spawn and a refused one; the services' /metrics behind a token.

The hub runs the spawner on the real Slurm cluster and both services as managed services, set up as
the README's site config does. Tokens: the tests' admin service holds `read:metrics` (JupyterHub's
admin role has it); a person's token to a service does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import SlurmHub, cancel_test_jobs, public_tempdir, stop_all_servers
from .hub import Hub
from .process import free_port, wait_for

pytestmark = pytest.mark.slurm

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture(scope="module")
def site(slurm_cluster: None) -> Iterator[SlurmHub]:
    workdir = public_tempdir("daas-metrics-")
    (workdir / "data.yaml").write_text("locations:\n  - name: raw\n    path: /data/{proposal}/raw\n")
    (workdir / "dask.yaml").write_text("")
    services = workdir / "daas_config.py"
    services.write_text(
        f"c.DataService.data_locations = {str(workdir / 'data.yaml')!r}\n"
        f"c.DaskService.limits_file = {str(workdir / 'dask.yaml')!r}\n"
        f"c.DaskService.db_url = 'sqlite:///{workdir / 'dask' / 'clusters.sqlite'}'\n"
    )
    config = f"""
        from daas_hub import add_service_roles, custom_scopes, dask_service, data_service
        c.JupyterHub.services.extend([
            data_service("{services}", url="http://127.0.0.1:{free_port()}"),
            dask_service("{services}", url="http://127.0.0.1:{free_port()}"),
        ])
        c.JupyterHub.custom_scopes.update(custom_scopes())
        add_service_roles(c, "daas-data", "daas-dask")
    """
    cancel_test_jobs()
    env = SlurmHub(workdir, extra_config=config)
    env.start()
    try:
        for service in ("daas-data", "daas-dask"):
            wait_for(lambda name=service: metrics_of(env.hub, name).status_code == 200, 60, f"the {service} service")
        yield env
    finally:
        stop_all_servers(env.hub)
        env.close()


def metrics_of(hub: Hub, service: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"token {token or hub.admin_token}"}
    return hub.http.get(f"{hub.url}/services/{service}/metrics", headers=headers)


def hub_metrics(hub: Hub) -> Samples:
    response = hub.http.get(f"{hub.url}/hub/metrics", headers={"Authorization": f"token {hub.admin_token}"})
    assert response.status_code == 200, response.text
    return samples(response.text)


def test_hub_metrics_show_the_spawn_its_scheduler_queries_and_a_refusal(site: SlurmHub) -> None:
    hub = site.hub
    before = hub_metrics(hub)
    assert hub.spawn("bob", {"profile": "no-such-profile"}).status_code >= 400
    assert hub.spawn("bob", {"profile": "cpu"}).status_code in (201, 202)
    hub.wait_ready("bob")
    after = hub_metrics(hub)

    assert grew(before, after, "daas_spawn_duration_seconds_count", backend="slurm", profile="cpu") == 1
    assert value(after, "daas_spawn_duration_seconds_sum", backend="slurm", profile="cpu") > 0
    assert grew(before, after, "daas_spawn_failures_total", backend="none", cause="options_refused") == 1
    assert grew(before, after, "daas_refusals_total", rule="profile") == 1

    jobs = {"backend": "slurm", "transport": "cli", "query": "jobs"}
    assert value(after, "daas_scheduler_query_duration_seconds_count", **jobs) >= 1
    assert ("daas_scheduler_query_failures_total", frozenset(jobs.items())) in after
    age = value(after, "daas_scheduler_view_age_seconds", backend="slurm", view="jobs")
    assert math.isfinite(age) and age >= 0
    ping = {"backend": "slurm", "transport": "cli", "query": "ping"}
    assert value(after, "daas_scheduler_query_duration_seconds_count", **ping) >= 1
    labels = {label for (_, pairs) in after for label, _ in pairs}
    assert "bob" not in {v for (_, pairs) in after for _, v in pairs} and "user" not in labels


@pytest.mark.parametrize("service", ["daas-data", "daas-dask"])
def test_service_metrics_refuse_without_a_token_and_without_read_metrics(site: SlurmHub, service: str) -> None:
    hub = site.hub
    anonymous = hub.http.get(f"{hub.url}/services/{service}/metrics")
    assert anonymous.status_code in (401, 403), anonymous.text
    person = hub.token_for("alice", [f"access:services!service={service}"])
    refused = metrics_of(hub, service, person)
    assert refused.status_code == 403 and "read:metrics" in refused.text


def test_the_data_service_counts_reads_and_refusals(site: SlurmHub) -> None:
    hub = site.hub
    token = hub.token_for("alice", ["access:services!service=daas-data"])
    headers = {"Authorization": f"token {token}"}
    before = samples(metrics_of(hub, "daas-data").text)
    assert hub.http.get(f"{hub.url}/services/daas-data/api/mounts", headers=headers).status_code == 200
    browse = hub.http.get(f"{hub.url}/services/daas-data/api/browse/20231234/raw/", headers=headers)
    assert browse.status_code == 403  # alice has no proposal on this hub
    after = samples(metrics_of(hub, "daas-data").text)
    assert grew(before, after, "daas_data_reads_total", kind="mounts") == 1
    assert grew(before, after, "daas_service_refusals_total", rule="not_your_proposal") == 1


def test_the_dask_service_shows_its_clusters_and_workers(site: SlurmHub) -> None:
    found = samples(metrics_of(site.hub, "daas-dask").text)
    for status in ("starting", "running", "stopping"):
        assert ("daas_dask_clusters", frozenset({("status", status)})) in found
    assert value(found, "daas_dask_workers", state="submitted") == 0
    assert ("daas_dask_workers", frozenset({("state", "connected")})) in found
