"""Deciding an approval in a real browser, on real workers: a deploy waits for approval;
a release manager finds it on the Approvals page, chooses the environment and approves;
the deploy step then runs with the chosen value."""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from builds import engine
from builds.models import Build, BuildTarget
from tests.conftest import make_plan
from tests.ui.browser.conftest import sign_in
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]

APPROVAL = {
    "prompt": "Deploy release 1.2?",
    "approvers": "releasers",
    "fields": [
        {"name": "environment", "type": "select", "options": ["staging", "prod"], "required": True},
        {"name": "reason", "label": "Why now", "type": "text"},
    ],
}


def test_an_approver_approves_in_the_browser_and_the_deploy_runs_with_the_values(
    celery_workers, live_server, page, browser_user, buildable, screenshots
):
    browser_user.groups.add(Group.objects.create(name="releasers"))
    plan = make_plan(
        "gated-deploy",
        [
            {
                "key": "approve",
                "step_type": "approval",
                "wait_for_message": True,
                "config": APPROVAL,
            },
            {"key": "deploy", "depends_on": ["approve"], "config": {"seconds": 0}},
        ],
    )
    build = engine.start_build(plan, buildable)
    wait_for(
        lambda: BuildTarget.objects.filter(
            build=build, step_key="approve", status="waiting"
        ).exists(),
        timeout=60,
    )
    base = live_server.url
    sign_in(page, base, browser_user.username)

    page.get_by_role("link", name="Approvals").click()
    expect(page.get_by_text("Deploy release 1.2?")).to_be_visible()
    page.get_by_label("environment").select_option("prod")
    page.get_by_label("Why now").fill("tested on staging")
    page.screenshot(path=screenshots / "approvals-page.png", full_page=True)
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status").filter(has_text="approved")).to_be_visible()

    page.goto(f"{base}{build.get_absolute_url()}")
    expect(page.locator("#build-live .build-status .badge.status-passed")).to_be_visible()
    timeline = page.locator("table.timeline")
    expect(timeline).to_contain_text("with environment=prod, reason=tested on staging")
    expect(timeline).to_contain_text(browser_user.username)
    page.screenshot(path=screenshots / "approved-build.png", full_page=True)
    assert Build.objects.get(pk=build.pk).status == "passed"
    deploy = BuildTarget.objects.get(build=build, step_key="deploy")
    assert deploy.variables["approval.approve.environment"] == "prod"
