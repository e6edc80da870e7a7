"""Waiting that is visible: the "Waiting" page across builds, a waiting target's facts on
its build page (age, deadline, messages, the outside system's answer), and ``stuck_after``."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from builds import engine, logs
from builds.models import BuildMessage, BuildTarget, StatusEvent
from tests.conftest import make_plan
from tests.ui.conftest import make_build, make_target
from tests.ui.test_live_poll import poll_url

pytestmark = pytest.mark.django_db


def waiting(build, key: str, seconds_ago: float, **fields) -> BuildTarget:
    """A target of ``build`` that started waiting ``seconds_ago`` (its status event)."""
    target = make_target(build, key, "waiting", **fields)
    event = StatusEvent.objects.create(
        build=build, target=target, from_status="building", to_status="waiting", cause="worker"
    )
    StatusEvent.objects.filter(pk=event.pk).update(
        at=timezone.now() - timedelta(seconds=seconds_ago)
    )
    return target


def waiting_page(client) -> str:
    response = client.get(reverse("waiting-list"))
    assert response.status_code == 200
    return response.content.decode()


def test_it_lists_every_waiting_target_across_builds_oldest_first(signed_in, buildable):
    deploy = make_plan("deploy", [{"key": "ship"}])
    ci = make_plan("ci", [{"key": "tests"}, {"key": "lint"}])
    first, second = make_build(deploy, buildable), make_build(ci, buildable)
    waiting(second, "tests", seconds_ago=60)
    waiting(first, "ship", seconds_ago=3600)
    make_target(second, "lint", "building")
    make_target(first, "ship", "waiting", generation=0)  # of an older run: not shown

    html = waiting_page(signed_in)

    assert html.index("<code>ship</code>") < html.index("<code>tests</code>")
    assert "<code>lint</code>" not in html
    assert reverse("build-detail", args=[first.pk]) in html and ">deploy<" in html
    assert html.count("<code>ship</code>") == 1
    assert "waiting for" in html and "1 h" in html


def test_the_waiting_page_costs_the_same_queries_however_many_targets(
    signed_in, buildable, django_assert_max_num_queries
):
    plan = make_plan("wide", [{"key": f"s{i}"} for i in range(20)])
    build = make_build(plan, buildable)
    for i in range(20):
        waiting(build, f"s{i}", seconds_ago=i)
    with django_assert_max_num_queries(4):  # session, user, the targets (and a savepoint)
        waiting_page(signed_in)


def test_a_target_past_its_stuck_after_is_flagged_on_both_pages(signed_in, buildable):
    plan = make_plan("deploy", [{"key": "ship"}, {"key": "smoke"}])
    build = make_build(plan, buildable)
    waiting(build, "ship", seconds_ago=120, config={"stuck_after": 60})
    waiting(build, "smoke", seconds_ago=120, config={"stuck_after": 600})

    assert waiting_page(signed_in).count("⚠ stuck") == 1
    html = signed_in.get(reverse("build-detail", args=[build.pk])).content.decode()
    assert html.count("⚠ stuck") == 1
    assert html.index("⚠ stuck") < html.index("<code>smoke</code>")


def test_a_waiting_target_shows_its_deadline_messages_and_the_call_answer(signed_in, buildable):
    plan = make_plan("deploy", [{"key": "ship"}, {"key": "smoke"}])
    build = make_build(plan, buildable)
    deadline = timezone.now() + timedelta(hours=1)
    ship = waiting(build, "ship", seconds_ago=30, wait_deadline=deadline)
    waiting(build, "smoke", seconds_ago=30)
    logs.write(ship, "https://deploy.example.com", "http.head", "HTTP 202 Accepted\nX-Id: 7")
    logs.write(ship, "https://deploy.example.com", "http.body", '{"deployment": 7}')
    for kind in ("work", "work"):
        BuildMessage.objects.create(receiver_phid=ship.phid, target=ship, build=build, type=kind)

    html = signed_in.get(reverse("build-detail", args=[build.pk])).content.decode()

    assert "answered <code>HTTP 202 Accepted</code>" in html
    assert "{&quot;deployment&quot;: 7}" in html
    assert "2 messages received so far (2 <code>work</code>)" in html
    assert deadline.strftime("%Y-%m-%d %H:%M:%S") in html
    assert "0 messages received so far" in html and "with no deadline" in html


def test_a_target_queued_for_its_group_says_how_many_are_ahead(signed_in, buildable):
    concurrency = {"group": "deploy-${buildable.ref}", "limit": 1}
    step = {"key": "ship", "step_type": "sleep", "config": {"concurrency": concurrency}}
    plan = make_plan("deploy", [step])
    builds = []
    for _ in range(4):
        builds.append(engine.start_build(plan, buildable))
        engine.update_build(builds[-1].pk)

    pages = [signed_in.get(reverse("build-detail", args=[b.pk])).content.decode() for b in builds]

    assert "queued for" not in pages[0]  # it holds the slot
    assert "queued for <code>deploy-main</code> (0 ahead)" in pages[1]
    assert "queued for <code>deploy-main</code> (2 ahead)" in pages[3]


def test_a_poll_shows_a_queued_target_moving_up_when_another_build_is_admitted(
    signed_in, buildable
):
    """A queued target's place changes with other builds' rows, not its own: the live
    region's versions count it all the same."""
    concurrency = {"group": "deploy-${buildable.ref}", "limit": 1}
    step = {"key": "ship", "step_type": "sleep", "config": {"concurrency": concurrency}}
    plan = make_plan("deploy", [step])
    builds = [engine.start_build(plan, buildable) for _ in range(3)]
    for build in builds:
        engine.update_build(build.pk)
    url = poll_url(signed_in, builds[2])
    assert signed_in.get(url).status_code == 204

    # The second build's target gets the next slot (as a pass over it would admit it).
    BuildTarget.objects.filter(build=builds[1]).update(date_admitted=timezone.now())

    response = signed_in.get(url)
    assert response.status_code == 200
    assert "queued for <code>deploy-main</code> (0 ahead)" in response.content.decode()


def test_a_poll_shows_a_target_that_became_stuck_as_time_passed(signed_in, buildable):
    plan = make_plan("deploy", [{"key": "ship"}])
    build = make_build(plan, buildable, status="building")
    target = waiting(build, "ship", seconds_ago=30, config={"stuck_after": 60})
    url = poll_url(signed_in, build)
    assert signed_in.get(url).status_code == 204

    # A minute and a half later: nothing of the build changed but the clock.
    StatusEvent.objects.filter(target=target).update(at=timezone.now() - timedelta(seconds=90))

    response = signed_in.get(url)
    assert response.status_code == 200
    assert "⚠ stuck" in response.content.decode()
