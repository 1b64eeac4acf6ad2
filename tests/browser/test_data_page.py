"""The data service's page in a real browser: a person sees their proposals' data, browses it, opens a NeXus tree.

The site is test_data's (OIDC login, the user office, data locations with real Unix permissions, the
data service as a hub-managed service). The pages' screenshots illustrate the user's guide (docs/).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from ..integration.conftest import cancel_test_jobs
from ..integration.test_data import SERVICE, DataSite
from .conftest import oidc_log_in, screenshot

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def site(slurm_cluster: None) -> Iterator[DataSite]:
    cancel_test_jobs()
    site = DataSite().start()
    yield site
    site.oidc.close()


def test_alice_browses_her_proposals_data_and_opens_a_nexus_file(browser: Browser, site: DataSite) -> None:
    context = browser.new_context(viewport={"width": 960, "height": 480})  # the pages are small: readable pictures
    page = oidc_log_in(context, site.hub, "alice")
    page.goto(f"{site.hub.url}{SERVICE}/")  # the service's OAuth with the hub passes without a question
    expect(page.locator("h1")).to_have_text("Experiment data")
    expect(page.locator("h2").first).to_contain_text("20231234: Strain in additively manufactured alloys")
    expect(page.locator("body")).not_to_contain_text("20230042")  # bob's proposal
    screenshot(page, "data-01-proposals")

    page.locator('a[href$="view/20231234/raw/"]').click()
    expect(page.locator("table")).to_contain_text("sample.nxs")
    expect(page.locator("table")).to_contain_text("scan_0001")
    screenshot(page, "data-02-raw-folder")

    page.get_by_role("link", name="sample.nxs").click()
    expect(page.locator("h1")).to_have_text("sample.nxs")
    expect(page.locator("ul.tree").first).to_contain_text("NXentry")
    expect(page.locator("ul.tree").first).to_contain_text("NXdata")
    screenshot(page, "data-03-nexus-tree")
    context.close()
