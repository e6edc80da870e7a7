"""Watching a build in a real browser: start it from the plan page, see its target wait,
send the verdict through the REST API, see it pass without a reload, then restart and abort
it through their confirmations. Screenshots of the main pages are saved as it goes."""

import pytest
import requests
from playwright.sync_api import expect

from accounts.models import ApiToken
from builds.models import Build, BuildTarget
from tests.conftest import make_plan
from tests.ui.browser.conftest import sign_in
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]


@pytest.fixture
def waiting_plan(db):
    """A plan whose one step sleeps briefly, then waits for a pass/fail message."""
    return make_plan(
        "wait-for-ci",
        [
            {
                "key": "ci",
                "name": "External CI",
                "config": {"seconds": 0.5},
                "wait_for_message": True,
            }
        ],
        description="Sleep, then wait for the external CI's verdict.",
        behaviors={"restartable": "always"},
    )


def send_message(base_url: str, token: str, receiver: str, message_type: str) -> None:
    response = requests.post(
        f"{base_url}/api/v1/sendmessage",
        json={"receiver": receiver, "type": message_type},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text


def build_status(page):
    return page.locator("#build-live .build-status .badge")


def target_badge(page, status: str):
    return page.locator(f"#step-ci h3 .badge.status-{status}")


def confirm_command(page, command: str, build: Build) -> None:
    """Click the command's button, then confirm on the confirmation page."""
    page.get_by_role("link", name=f"{command.capitalize()}…").click()
    expect(
        page.get_by_role("heading", name=f"{command.capitalize()} build {build.id}?")
    ).to_be_visible()
    page.get_by_role("button", name=f"{command.capitalize()} build {build.id}").click()
    page.wait_for_url(f"**{build.get_absolute_url()}")
    expect(
        page.get_by_role("status").filter(has_text=f"{command.capitalize()} sent")
    ).to_be_visible()


def test_a_build_started_in_the_browser_waits_passes_restarts_and_aborts_live(
    celery_workers, live_server, page, browser_user, waiting_plan, screenshots
):
    base = live_server.url
    token = ApiToken.issue(browser_user, name="ci")[1]
    sign_in(page, base, browser_user.username)

    page.goto(f"{base}/plans/{waiting_plan.id}/")
    page.get_by_label("Repository").fill("https://example.com/widgets.git")
    page.get_by_label("Ref").fill("main")
    page.get_by_label("Parameters").fill("flavour=vanilla")
    page.screenshot(path=screenshots / "plan-page.png", full_page=True)
    page.get_by_role("button", name="Start a build").click()

    page.wait_for_url(f"{base}/builds/*/")
    build = Build.objects.get()
    assert build.initiator == browser_user and build.parameters == {"flavour": "vanilla"}
    page.evaluate("window.harborNotReloaded = true")

    expect(target_badge(page, "waiting")).to_be_visible()
    expect(page.locator("#step-ci .since")).to_contain_text("waiting for")
    page.screenshot(path=screenshots / "build-page-waiting.png", full_page=True)

    target = BuildTarget.objects.get(build=build, generation=1)
    send_message(base, token, target.phid, "pass")

    expect(build_status(page)).to_have_text("passed")
    expect(target_badge(page, "passed")).to_be_visible()
    expect(page.locator("#build-live")).not_to_have_attribute("hx-trigger", "every 2s")
    assert page.evaluate("window.harborNotReloaded") is True  # updated in place
    page.screenshot(path=screenshots / "build-page-passed.png", full_page=True)

    confirm_command(page, "restart", build)
    expect(page.get_by_role("link", name="Run 2 (current)")).to_be_visible()
    expect(target_badge(page, "waiting")).to_be_visible()
    assert wait_for(lambda: Build.objects.get(pk=build.pk).generation == 2)

    confirm_command(page, "abort", build)
    expect(build_status(page)).to_have_text("aborted")
    expect(target_badge(page, "aborted")).to_be_visible()
    page.get_by_role("link", name="Run 1").click()
    expect(target_badge(page, "passed")).to_be_visible()
    page.screenshot(path=screenshots / "build-page-run-1.png", full_page=True)

    page.goto(f"{base}/")
    expect(page.get_by_role("link", name=f"Build {build.id}")).to_be_visible()
    page.screenshot(path=screenshots / "build-list.png", full_page=True)
    page.get_by_role("link", name="https://example.com/widgets.git main").click()
    expect(page.get_by_role("heading", name=f"Buildable {build.buildable_id}")).to_be_visible()
    expect(page.locator(".build-status .badge")).to_have_text("failed")  # aborted counts
    page.screenshot(path=screenshots / "buildable-page.png", full_page=True)
