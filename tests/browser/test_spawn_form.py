"""A scientist in a real browser: pick a resource, wait in the queue knowing why, get JupyterLab."""

from __future__ import annotations

import re
import subprocess
import time

from playwright.sync_api import Browser, expect

from ..integration.conftest import SlurmHub
from ..integration.hub import Hub, wait_for
from ..integration.slurm import cluster, hold_gpus, job_details
from .conftest import log_in, screenshot


def test_gpu_spawn_waits_with_the_queue_reason_then_opens_jupyterlab(browser: Browser, hub: Hub) -> None:
    page = browser.new_page()
    log_in(page, hub, "alice")
    page.goto(f"{hub.url}/hub/spawn")
    profiles = page.locator('input[name="profile"]')
    expect(profiles).to_have_count(3)
    assert [profiles.nth(i).get_attribute("value") for i in range(3)] == ["cpu", "gpu", "power9"]
    expect(page.locator("#daas-availability")).to_be_visible()
    expect(page.locator('#daas-availability tr[data-partition="gpu"]')).to_contain_text("/ 2")
    screenshot(page, "01-spawn-form")

    blocker = hold_gpus("bob", 2)
    try:
        page.locator("#daas-profile-gpu").check()
        options = page.locator("#daas-options-gpu")
        expect(options).to_be_visible()
        expect(page.locator("#daas-options-cpu")).to_be_hidden()
        options.locator("summary").click()  # Advanced mode
        options.get_by_label("GPUs").select_option("1")
        options.get_by_label("GPU type").select_option("tesla")
        options.get_by_label("Memory").fill("3G")
        screenshot(page, "02-advanced-gpu")
        page.get_by_role("button", name="Start").click()
        page.wait_for_url(re.compile(r".*/spawn-pending/.*"))
        expect(page.locator("body")).to_contain_text(re.compile(r"pending \(reason: Resources\)"), timeout=60_000)
        screenshot(page, "03-pending-resources")
    finally:
        subprocess.run(["scancel", blocker], check=True)

    page.wait_for_url(re.compile(r".*/user/alice/lab.*"), timeout=180_000)
    expect(page).to_have_title(re.compile("JupyterLab"), timeout=60_000)
    page.locator("#jp-main-dock-panel").wait_for(timeout=60_000)
    screenshot(page, "04-jupyterlab")
    job = job_details(hub.job_id("alice"))
    assert job["Partition"] == "gpu" and job["TresPerNode"] == "gres:gpu:tesla:1"
    page.close()


def test_the_form_works_with_javascript_off(browser: Browser, hub: Hub) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    log_in(page, hub, "bob")
    page.goto(f"{hub.url}/hub/spawn")
    expect(page.locator("#daas-options-power9")).to_be_visible()  # no script hides anything
    page.locator("#daas-profile-power9").check()
    page.locator('input[name="power9.cores"][value="max"]').check()
    screenshot(page, "05-no-js-form")
    page.get_by_role("button", name="Start").click()
    hub.wait_ready("bob")
    page.goto(f"{hub.url}/user/bob/lab")
    expect(page).to_have_title(re.compile("JupyterLab"))
    job = job_details(hub.job_id("bob"))
    assert (job["Partition"], job["NodeList"], job["NumCPUs"]) == ("power9", "p9-01", "8")
    context.close()


def test_with_the_controller_down_the_page_renders_stale_and_a_spawn_fails_clearly(
    browser: Browser, slurm_hub: SlurmHub, hub: Hub
) -> None:
    page = browser.new_page()
    log_in(page, hub, "carol")
    page.goto(f"{hub.url}/hub/spawn")  # a fresh view while the controller is up
    cluster("stop-controller")
    try:
        time.sleep(slurm_hub.availability_ttl + 1)  # the cached view is now older than its TTL
        started = time.monotonic()
        page.goto(f"{hub.url}/hub/spawn")
        rendered = time.monotonic() - started
        expect(page.locator("#daas-availability-status")).to_contain_text("not answering")
        screenshot(page, "06-controller-down")
        assert rendered < 1.0, f"spawn page took {rendered:.2f} s with the controller down"

        page.locator("#daas-profile-cpu").check()
        page.get_by_role("button", name="Start").click()
        message = page.locator(".alert-danger, #progress-message, .progress-log")
        expect(message.first).to_contain_text("Slurm is not answering", timeout=60_000)
        screenshot(page, "07-spawn-refused")
        assert "500" not in page.title()
    finally:
        cluster("start-controller")
    wait_for(lambda: hub.server_model("carol") is None, 60, "carol's failed server to be cleared")
    page.close()
