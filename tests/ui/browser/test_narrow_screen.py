"""Harbor on a phone (390 px wide): the navigation fits and works, and no page scrolls
sideways; wide tables scroll inside themselves."""

import pytest
from playwright.sync_api import expect

from builds.models import UnitResult
from tests.ui.browser.conftest import sign_in
from tests.ui.conftest import make_build, make_target, plan_of, report

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE)
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_navigation_fits_and_works_on_a_390_px_screen(
    live_server, phone, browser_user, buildable, screenshots
):
    build = make_build(plan_of(3), buildable, status="failed")
    target = make_target(build, "step-0", status="failed")
    report(target, log_text="a long line " * 40 + "\n" + "done\n")
    UnitResult.objects.create(
        target=target, name="test_" + "x" * 150, namespace="suite", result="fail", details="e"
    )
    sign_in(phone, live_server.url, browser_user.username)
    nav = phone.get_by_role("navigation", name="Main")
    for name in ("Builds", "Plans", "API tokens"):
        link = nav.get_by_role("link", name=name)
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], name
    expect(phone.get_by_role("button", name="Sign out")).to_be_in_viewport()
    assert page_width(phone) <= PHONE["width"]
    phone.screenshot(path=screenshots / "narrow-build-list.png", full_page=True)

    nav.get_by_role("link", name="Plans").click()
    expect(phone.get_by_role("heading", level=1)).to_contain_text("plans", ignore_case=True)
    assert page_width(phone) <= PHONE["width"]

    phone.goto(live_server.url + build.get_absolute_url())
    expect(phone.locator("#unit-results")).to_be_visible()
    assert page_width(phone) <= PHONE["width"]
    phone.screenshot(path=screenshots / "narrow-build-page.png", full_page=True)
    phone.get_by_role("navigation", name="Main").get_by_role("link", name="Builds").click()
    phone.wait_for_url(f"{live_server.url}/")
