"""Real headless Chromium (Debian's) driven by Playwright against a real hub on the Slurm cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from ..integration.conftest import ARTIFACTS, hub, slurm_cluster, slurm_hub  # noqa: F401 - shared fixtures
from ..integration.hub import Hub
from ..integration.oidc_site import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ARTIFACTS / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped: Playwright's sync API runs an event loop that must be gone before async tests run."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {SCREENSHOTS}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def log_in(page: Page, on: Hub, user: str) -> None:
    page.goto(f"{on.url}/hub/login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill("daas-test-password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/hub/**")


def oidc_log_in(context: BrowserContext, on: Hub, user: str, password: str = PASSWORD) -> Page:
    """Log in through the hub's OpenID provider (tests/oidc/provider.mjs) in a page of `context`."""
    page = context.new_page()
    page.goto(f"{on.url}/hub/oauth_login")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{on.url}/hub/**")
    return page


def screenshot(page: Page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
