"""A build page with many unit results, and its live polls, in a real browser: counts at
the top, failures first, pages, search and the result filter; while live, polls that find
nothing changed swap nothing (running times still count on), and a change replaces only the
sections it changed.
Rows are created directly in given states; no workers are needed."""

import pytest
from playwright.sync_api import expect

from builds.models import StatusEvent, UnitResult
from tests.ui.browser.conftest import sign_in
from tests.ui.conftest import make_build, make_target, plan_of

pytestmark = pytest.mark.django_db(transaction=True)


def rows(page):
    return page.locator("#unit-results table.unit-results tbody tr")


def test_many_unit_results_are_counted_paged_searched_and_filtered(
    live_server, page, browser_user, buildable, screenshots
):
    build = make_build(plan_of(1), buildable, status="failed")
    target = make_target(build, "step-0", status="failed")
    UnitResult.objects.bulk_create(
        UnitResult(target=target, name=f"test_{i:04}", namespace="suite", result="pass")
        for i in range(247)
    )
    UnitResult.objects.bulk_create(
        UnitResult(target=target, name=f"test_bad_{i}", result="fail", details=f"boom {i}")
        for i in range(3)
    )
    sign_in(page, live_server.url, browser_user.username)
    page.goto(live_server.url + build.get_absolute_url())

    counts = page.get_by_role("list", name="Unit results by result")
    expect(counts.locator('[data-result="fail"] .n')).to_have_text("3")
    expect(counts.locator('[data-result="pass"] .n')).to_have_text("247")
    expect(rows(page)).to_have_count(100)
    expect(rows(page).first).to_contain_text("test_bad_0")
    expect(rows(page).first).to_contain_text("boom 0")
    page.screenshot(path=screenshots / "build-page-unit-results.png", full_page=True)

    page.get_by_role("link", name="Next").click()
    expect(page.locator("#unit-results .pagination")).to_contain_text("Page 2 of 3")
    expect(rows(page).first).to_contain_text("test_0097")

    page.get_by_label("Name or namespace").fill("test_0042")
    page.get_by_role("button", name="Show").click()
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("test_0042")

    page.get_by_label("Name or namespace").fill("")
    page.get_by_label("Result", exact=True).select_option("fail")
    page.get_by_role("button", name="Show").click()
    expect(rows(page)).to_have_count(3)


def mark(page, element_id: str) -> None:
    page.evaluate(f"document.getElementById('{element_id}').dataset.marker = 'first render'")


def marker(page, element_id: str):
    return page.evaluate(f"document.getElementById('{element_id}').dataset.marker")


def test_unchanged_polls_swap_nothing_and_a_change_replaces_only_its_sections(
    live_server, page, browser_user, buildable
):
    build = make_build(plan_of(1), buildable, status="building")
    target = make_target(build, "step-0", status="building")
    UnitResult.objects.create(target=target, name="test_first", result="pass")
    StatusEvent.objects.create(
        target=target, from_status="pending", to_status="building", cause="worker"
    )
    polls = []
    page.on(
        "response", lambda response: "partial=1" in response.url and polls.append(response.status)
    )
    sign_in(page, live_server.url, browser_user.username)
    page.goto(live_server.url + build.get_absolute_url())
    for element_id in ("build-live", "live-head", "live-units", "live-timeline"):
        mark(page, element_id)
    ticking = page.locator("#step-step-0 .since .ticking")
    shown = ticking.inner_text()

    page.wait_for_timeout(4500)  # two polls at least
    assert polls and set(polls) == {204}
    assert marker(page, "live-units") == "first render"
    assert ticking.inner_text() != shown  # the running time counts on without a swap

    UnitResult.objects.create(target=target, name="test_second", result="fail", details="late")
    expect(rows(page).first).to_contain_text("test_second")
    assert 200 in polls
    assert marker(page, "live-units") is None  # the unit results were replaced...
    for element_id in ("build-live", "live-head", "live-timeline"):  # ...and nothing else
        assert marker(page, element_id) == "first render", element_id
