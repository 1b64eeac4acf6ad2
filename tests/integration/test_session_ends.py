"""Servers end as their profile says, on a real hub and real Slurm jobs: idle ends, and the maximum lifetime.

`idle` stops itself after 2 idle minutes (jupyter_server's own check, set from the profile), but not
while a kernel runs a cell; `short` is stopped by the hub after its 1-minute lifetime, also when the
lifetime passed while the hub was down. The home page says when each server ends, and why it stopped.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator

import pytest
import yaml

from .conftest import SlurmHub, cancel_test_jobs, public_tempdir, stop_all_servers
from .hub import Hub, wait_for
from .kernel import start_in_kernel
from .slurm import job_details

pytestmark = pytest.mark.slurm

IDLE_TIMEOUT = 120
LIFETIME = 60


@pytest.fixture(scope="module")
def hub(slurm_cluster: None) -> Iterator[Hub]:
    cancel_test_jobs()
    site = SlurmHub(public_tempdir("daas-ends-"))
    data = yaml.safe_load(site.profiles.read_text())
    cpu = data["profiles"][0]
    data["profiles"] += [
        dict(cpu, id="idle", display_name="Ends when idle", idle_timeout=f"{IDLE_TIMEOUT // 60}m"),
        dict(cpu, id="short", display_name="One minute", max_lifetime=f"{LIFETIME}s"),
    ]
    site.profiles.write_text(yaml.safe_dump(data))
    site.start()
    yield site.hub
    stop_all_servers(site.hub)
    site.close()


def home_row(hub: Hub, user: str, server: str) -> str:
    """The text of a server's row in the home page's sessions table."""
    with hub.logged_in(user) as browser:
        page = browser.get("/hub/home").text
    row = re.search(rf'<tr class="daas-session" data-server="{server}">(.*?)</tr>', page, re.S)
    assert row, f"no session row for {user}/{server} on the home page:\n{page[-3000:]}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row.group(1))).split())


def test_an_idle_server_stops_itself_but_not_while_a_cell_runs(hub: Hub) -> None:
    for server in ("quiet", "busy"):
        response = hub.spawn("alice", {"profile": "idle"}, server)
        assert response.status_code in (201, 202), response.text
    for server in ("quiet", "busy"):
        hub.wait_ready("alice", server)
    started = time.monotonic()
    token = hub.token_for("alice", ["access:servers!user=alice"])
    start_in_kernel(hub, "alice", token, "import time; time.sleep(400)", server="busy")
    busy_job = hub.job_id("alice", "busy")
    assert "idle end" in home_row(hub, "alice", "quiet")

    # jupyter_server looks once a minute: the idle one ends between 2 and about 3 minutes.
    hub.wait_stopped("alice", "quiet", timeout=IDLE_TIMEOUT + 120)
    assert time.monotonic() - started >= IDLE_TIMEOUT - 5
    # The busy one has had its kernel running for longer than the timeout and a check since.
    wait_for(lambda: time.monotonic() - started > IDLE_TIMEOUT + 70, IDLE_TIMEOUT + 90, "a check after the timeout")
    assert hub.server_model("alice", "busy")["ready"], "the server with a running cell stopped"
    assert job_details(busy_job)["JobState"] == "RUNNING"

    why = home_row(hub, "alice", "quiet")
    assert "Stopped: Your server stopped after 2 min without activity (the idle timeout of profile 'idle')" in why
    hub.stop_server("alice", "busy")


def test_the_hub_stops_a_server_at_its_lifetime_and_the_home_page_says_why(hub: Hub) -> None:
    response = hub.spawn("bob", {"profile": "short"}, "brief")
    assert response.status_code in (201, 202), response.text
    hub.wait_ready("bob", "brief")
    job = hub.job_id("bob", "brief")
    running = home_row(hub, "bob", "brief")
    assert "(maximum lifetime)" in running and "short" in running

    hub.wait_stopped("bob", "brief", timeout=LIFETIME + 60)
    wait_for(lambda: job_details(job)["JobState"] != "RUNNING", 30, f"job {job} to end")
    assert job_details(job)["JobState"] in ("CANCELLED", "COMPLETED")
    assert "Stopped: Your server was stopped at the end of its maximum lifetime (1 min, profile 'short')" in (
        home_row(hub, "bob", "brief")
    )


def test_a_lifetime_that_passed_while_the_hub_was_down_ends_the_server_at_hub_start(hub: Hub) -> None:
    response = hub.spawn("carol", {"profile": "short"}, "brief")
    assert response.status_code in (201, 202), response.text
    hub.wait_ready("carol", "brief")
    job = hub.job_id("carol", "brief")
    hub.stop()
    time.sleep(LIFETIME + 5)
    assert job_details(job)["JobState"] == "RUNNING"  # nobody ended it while the hub was down
    hub.start()
    hub.wait_stopped("carol", "brief", timeout=60)
    wait_for(lambda: job_details(job)["JobState"] != "RUNNING", 30, f"job {job} to end")
    assert "maximum lifetime (1 min, profile 'short')" in home_row(hub, "carol", "brief")
