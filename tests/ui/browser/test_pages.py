"""The other main pages in a real browser: API tokens (created once, revoked), a build's
reports (links, unit results, lint, log) and the note shown when Harbor cannot be reached.
Rows are created directly in given states; no workers are needed."""

import pytest
from playwright.sync_api import expect

from accounts.models import ApiToken
from builds.models import Artifact, BuildMessage
from tests.ui.browser.conftest import sign_in
from tests.ui.conftest import make_build, make_target, plan_of, report

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_token_is_shown_once_when_created_and_can_be_revoked(
    live_server, page, browser_user, screenshots
):
    base = live_server.url
    sign_in(page, base, browser_user.username)
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("jenkins")
    page.get_by_role("button", name="Create token").click()

    shown = page.get_by_label("New token", exact=True).input_value()
    assert ApiToken.find_active(shown).user == browser_user
    page.screenshot(path=screenshots / "token-page.png", full_page=True)

    page.reload()
    expect(page.get_by_label("New token", exact=True)).to_have_count(0)  # shown once only
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke token jenkins").click()
    expect(page.get_by_role("status").filter(has_text="Token revoked")).to_be_visible()
    assert ApiToken.find_active(shown) is None


def test_a_build_page_shows_links_failures_first_lint_and_the_log(
    live_server, page, browser_user, buildable, screenshots
):
    build = make_build(plan_of(2), buildable, status="failed", initiator=browser_user)
    make_target(build, "step-0", status="passed")
    failed = make_target(
        build, "step-1", status="failed", config={"uri": "https://ci.example/run", "token": "t0p"}
    )
    report(failed, author=browser_user, log_text="compiling\nerror: widget missing\n")
    Artifact.objects.create(
        target=failed,
        build=build,
        generation=1,
        key="ci-run",
        artifact_type="uri",
        data={"uri": "https://ci.example/run/42", "name": "CI run 42", "ui.external": True},
    )
    sign_in(page, live_server.url, browser_user.username)
    page.goto(live_server.url + build.get_absolute_url())

    expect(page.get_by_role("link", name="CI run 42")).to_have_attribute(
        "href", "https://ci.example/run/42"
    )
    unit = page.locator("#unit-results table.unit-results tbody tr")
    expect(unit.first).to_contain_text("test_broken")  # failures first
    expect(page.locator("#step-step-1 .log pre")).to_contain_text("widget missing")
    page.locator("#step-step-1 summary", has_text="Configuration").click()
    expect(page.locator("#step-step-1 table.settings")).to_contain_text("********")
    expect(page.locator("#step-step-1 table.settings")).not_to_contain_text("t0p")
    page.screenshot(path=screenshots / "build-page-failed-with-reports.png", full_page=True)


def test_a_note_shows_while_harbor_cannot_be_reached_and_goes_when_it_answers(
    live_server, page, browser_user, buildable
):
    build = make_build(plan_of(1), buildable, status="building")
    make_target(build, "step-0", status="building")
    BuildMessage.objects.create(receiver_phid=build.phid, build=build, type="pause")
    sign_in(page, live_server.url, browser_user.username)
    page.goto(live_server.url + build.get_absolute_url())
    note = page.locator("#poll-error")
    expect(note).to_be_hidden()

    page.route("**/*partial=1*", lambda route: route.abort())
    expect(note).to_be_visible()
    expect(note).to_contain_text("could not be reached")

    page.unroute("**/*partial=1*")
    expect(note).to_be_hidden()
    expect(page.locator("#build-live .build-status .badge")).to_have_text("pausing")
