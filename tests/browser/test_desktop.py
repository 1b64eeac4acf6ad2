"""A remote desktop on Slurm: the `desktop` environment opens noVNC, and Xfce draws on the canvas."""

from __future__ import annotations

import io
import re

from PIL import Image
from playwright.sync_api import Browser, expect

from ..integration.hub import Hub
from ..integration.slurm import job_details
from .conftest import log_in, screenshot


def colours(png: bytes) -> int:
    """How many distinct colours a screenshot has (a blank canvas has one)."""
    return len(Image.open(io.BytesIO(png)).convert("RGB").getcolors(maxcolors=1 << 24))


def test_a_desktop_environment_serves_a_desktop_in_the_browser(browser: Browser, hub: Hub) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    log_in(page, hub, "alice")
    page.goto(f"{hub.url}/hub/spawn")
    page.locator("#daas-profile-cpu").check()
    options = page.locator("#daas-options-cpu")
    options.locator("summary").click()  # Advanced mode
    environment = options.get_by_label("Environment")
    expect(environment.locator('option[value="desktop"]')).to_have_text("Xfce desktop (remote desktop)")
    environment.select_option("desktop")
    page.get_by_role("button", name="Start").click()

    page.wait_for_url(re.compile(r".*/user/alice/desktop/.*"), timeout=180_000)
    expect(page.locator("#status")).to_have_text("Connected", timeout=120_000)
    canvas = page.locator("#screen canvas")
    expect(canvas).to_be_visible()
    # Xfce's panel and desktop come up within seconds of the VNC server: wait until the canvas shows them.
    shown = 0
    for _ in range(60):
        shown = colours(canvas.screenshot())
        if shown > 50:
            break
        page.wait_for_timeout(1000)
    screenshot(page, "desktop-01-xfce-in-the-browser")
    assert shown > 50, f"the desktop canvas shows {shown} colours: blank"
    job = job_details(hub.job_id("alice"))
    assert job["JobState"] == "RUNNING" and job["UserId"].startswith("alice(")
    page.close()
