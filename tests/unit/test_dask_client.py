"""The notebook client's pure parts: finding the service, and what Jupyter shows of a cluster."""

from __future__ import annotations

import pytest

from daas_services.dask.client import DaskOffload, OffloadCluster, OffloadError, service_url

MODEL = {
    "id": "0123456789abcdef",
    "status": "running",
    "scheduler_address": "tls://10.0.0.5:8786",
    "dashboard_url": "/services/daas-dask/dashboard/0123456789abcdef/status",
    "options": {"proposal": "20231234", "partition": "cpu", "cores": 2, "memory_mb": 4096},
    "workers": 3,
    "cores": 6,
    "memory": 3 * 4 * 2**30,
    "requested": {"workers": 4, "adapt": None},
}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"DAAS_DASK_URL": "https://hub.example.org/services/daas-dask"},
            "https://hub.example.org/services/daas-dask/",
        ),
        ({"JUPYTERHUB_PUBLIC_HUB_URL": "https://hub.example.org/hub/"}, "https://hub.example.org/services/daas-dask/"),
        ({"JUPYTERHUB_PUBLIC_URL": "https://hub.example.org/"}, "https://hub.example.org/services/daas-dask/"),
    ],
)
def test_the_service_is_found_from_the_servers_environment(monkeypatch, env, expected) -> None:
    for name in ("DAAS_DASK_URL", "JUPYTERHUB_PUBLIC_HUB_URL", "JUPYTERHUB_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert service_url() == expected


def test_no_service_url_and_no_token_are_clear_errors(monkeypatch) -> None:
    for name in ("DAAS_DASK_URL", "JUPYTERHUB_PUBLIC_HUB_URL", "JUPYTERHUB_PUBLIC_URL", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(OffloadError, match="DAAS_DASK_URL"):
        service_url()
    with pytest.raises(OffloadError, match="no token"):
        DaskOffload("https://hub.example.org/services/daas-dask/")


def test_the_rich_repr_shows_workers_cores_memory_and_the_dashboard() -> None:
    cluster = OffloadCluster(DaskOffload("https://hub.example.org/services/daas-dask/", token="t"), dict(MODEL))
    html = cluster._repr_html_()
    assert "<td>3 (asked: 4)</td>" in html
    assert "<td>6 (2 per worker)</td>" in html
    assert "<td>12.0 GiB (4096 MiB per worker)</td>" in html
    assert "href='https://hub.example.org/services/daas-dask/dashboard/0123456789abcdef/status'" in html
    assert repr(cluster) == "<OffloadCluster 0123456789abcdef running: 3 workers>"


def test_the_rich_repr_escapes_what_it_shows() -> None:
    model = dict(MODEL, status="<script>x</script>", dashboard_url=None)
    html = OffloadCluster(DaskOffload("https://hub.example.org/", token="t"), model)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "Dashboard" not in html
