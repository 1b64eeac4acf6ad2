"""Bad user options through REST and through the form: HTTP 400 naming the field, no job submitted."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from .conftest import SlurmHub, running_slurm_hub
from .hub import Hub
from .slurm import user_jobs

INJECTIONS = ["1\n#SBATCH --uid=0", "#SBATCH -p gpu", "cpu; id", "$(id)", "`id`", "x' ; touch /tmp/pwned; '"]

REST_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown key", {"profile": "cpu", "image": "evil"}, "image"),
    ("partition outside profile", {"profile": "cpu", "partition": "gpu"}, "partition"),
    ("cores above max", {"profile": "cpu", "cores": 9}, "cores"),
    ("negative cores", {"profile": "cpu", "cores": -1}, "cores"),
    ("huge cores", {"profile": "cpu", "cores": 10**15}, "cores"),
    ("huge memory", {"profile": "cpu", "memory": "999999999G"}, "memory"),
    ("negative memory", {"profile": "cpu", "memory": -5}, "memory"),
    ("gpus above max", {"profile": "gpu", "gpus": 3}, "gpus"),
    ("gpus on cpu profile", {"profile": "cpu", "gpus": 1}, "gpus"),
    ("walltime above max", {"profile": "cpu", "walltime": "99:00:00"}, "walltime"),
    ("bool for int", {"profile": "gpu", "gpus": True}, "gpus"),
    ("list for int", {"profile": "cpu", "cores": [2]}, "cores"),
    ("object for string", {"profile": "cpu", "walltime": {"hours": 1}}, "walltime"),
    ("float cores", {"profile": "cpu", "cores": 1.5}, "cores"),
    ("int profile", {"profile": 5}, "profile"),
    ("unknown profile", {"profile": "nope"}, "profile"),
    ("profile of another group", {"profile": "staff-only"}, "profile"),
    ("environment path", {"profile": "cpu", "environment": "../../bin"}, "environment"),
    ("feature on cpu profile", {"profile": "cpu", "feature": "power9"}, "feature"),
]
for _field in ("partition", "cores", "memory", "walltime", "feature", "environment", "gpu_type"):
    for _n, _value in enumerate(INJECTIONS):
        _profile = "gpu" if _field == "gpu_type" else "power9" if _field == "feature" else "cpu"
        REST_CASES.append((f"{_field} injection {_n}", {"profile": _profile, _field: _value}, _field))


@pytest.fixture(scope="module", params=["cli", "rest"])
def slurm_hub(request: pytest.FixtureRequest, slurm_cluster: None) -> Iterator[SlurmHub]:
    """Both transports refuse the same input before Slurm sees it (rest: the unprivileged hub)."""
    yield from running_slurm_hub(transport=request.param, hub_poll_interval=1)


@pytest.fixture
def no_new_jobs(slurm_hub: SlurmHub, hub: Hub):
    before = slurm_hub.commands.count("sbatch")
    yield
    assert slurm_hub.commands.count("sbatch") == before, "a rejected request reached sbatch"
    assert user_jobs("alice") == []
    assert hub.server_model("alice") is None


@pytest.mark.parametrize(("options", "field"), [c[1:] for c in REST_CASES], ids=[c[0] for c in REST_CASES])
def test_rest_rejects(hub: Hub, no_new_jobs: None, options: dict[str, Any], field: str) -> None:
    response = hub.spawn("alice", options)
    assert response.status_code == 400, response.text
    assert f"{field}:" in response.json()["message"]


def test_rest_rejects_in_new_body_schema(hub: Hub, no_new_jobs: None) -> None:
    response = hub.spawn("alice", {"user_options": {"profile": "cpu", "cores": "1;id"}})
    assert response.status_code == 400
    assert "cores:" in response.json()["message"]


@pytest.fixture
def alice_browser(hub: Hub) -> Iterator[tuple[httpx.Client, str]]:
    """alice logged in through the form, and the spawn form's action URL (it carries the xsrf token)."""
    with httpx.Client(base_url=hub.url, follow_redirects=True, timeout=30) as client:
        yield client, _log_in(client, "alice")


def _log_in(client: httpx.Client, user: str) -> str:
    client.get("/hub/login")
    xsrf = client.cookies.get("_xsrf")
    response = client.post("/hub/login", data={"username": user, "password": "daas-test-password", "_xsrf": xsrf})
    assert response.status_code == 200, response.text
    page = client.get("/hub/spawn")
    assert page.status_code == 200
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text, re.DOTALL)
    assert action and "_xsrf=" in action.group(1), "spawn form has no xsrf-carrying action"
    return html.unescape(action.group(1))


FORM_CASES: list[tuple[str, list[tuple[str, str]], str]] = (
    [
        ("unknown field", [("profile", "cpu"), ("image", "evil")], "image"),
        ("partition outside profile", [("profile", "cpu"), ("partition", "gpu")], "partition"),
        ("cores above max", [("profile", "cpu"), ("cores", "9")], "cores"),
        ("negative cores", [("profile", "cpu"), ("cores", "-1")], "cores"),
        ("huge memory", [("profile", "cpu"), ("memory", "99999999999")], "memory"),
        ("profile of another group", [("profile", "staff-only")], "profile"),
        ("field twice", [("profile", "cpu"), ("cores", "1"), ("cores", "8")], "cores"),
    ]
    + [(f"cores injection {n}", [("profile", "cpu"), ("cores", v)], "cores") for n, v in enumerate(INJECTIONS)]
    + [(f"walltime injection {n}", [("profile", "cpu"), ("walltime", v)], "walltime") for n, v in enumerate(INJECTIONS)]
)


@pytest.mark.parametrize(("fields", "field"), [c[1:] for c in FORM_CASES], ids=[c[0] for c in FORM_CASES])
def test_form_rejects(
    alice_browser: tuple[httpx.Client, str], no_new_jobs: None, fields: list[tuple[str, str]], field: str
) -> None:
    client, action = alice_browser
    response = client.post(
        action, content=urlencode(fields).encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400, response.text[:500]
    assert f"{field}:" in response.text


def test_form_lists_only_the_users_profiles(alice_browser: tuple[httpx.Client, str]) -> None:
    client, _ = alice_browser
    page = client.get("/hub/spawn").text
    assert 'value="gpu"' in page
    assert 'value="staff-only"' not in page
