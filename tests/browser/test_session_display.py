"""The person sees when their server ends: on the hub's home page, and inside JupyterLab with a warning before it."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from ..integration.hub import Hub
from .conftest import log_in, screenshot


def test_home_page_and_jupyterlab_show_the_end_and_warn_before_it(browser: Browser, hub: Hub) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    log_in(page, hub, "carol")
    # A 10-minute job: its end is within the 15 minutes before which JupyterLab warns.
    response = hub.spawn("carol", {"profile": "cpu", "walltime": "0:10:00"})
    assert response.status_code in (201, 202), response.text
    hub.wait_ready("carol")

    page.goto(f"{hub.url}/hub/home")
    ends = page.locator('tr.daas-session[data-server=""] .daas-ends')
    expect(ends).to_contain_text("(wall time)")
    expect(ends).to_contain_text(re.compile(r"\(in (9|10) min\)"))
    screenshot(page, "session-01-home-page-says-when-it-ends")

    page.goto(f"{hub.url}/user/carol/lab")
    left = page.locator(".daas-session-left")
    expect(left).to_contain_text(re.compile(r"Session ends .* \((9|10) min left\)"), timeout=120_000)
    expect(left).to_have_class(re.compile("daas-session-ending"))
    warning = page.locator(".jp-Notification-Toast-warning")
    expect(warning).to_contain_text("save your work", timeout=60_000)
    screenshot(page, "session-02-jupyterlab-time-left-and-warning")
    page.close()
