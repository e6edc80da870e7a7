"""The build page: what targets reported, the timeline, and a live region that stops
polling once the build is complete."""

import pytest
from django.urls import reverse

from builds.models import BuildLog, BuildMessage, StatusEvent
from tests.ui.conftest import badge, make_build, make_target, plan_of, report

pytestmark = pytest.mark.django_db

POLL = 'hx-trigger="every 2s"'


def page(client, build, partial: bool = False) -> str:
    url = reverse("build-detail", args=[build.id]) + ("?partial=1" if partial else "")
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_it_shows_each_targets_status_unit_results_lint_and_log_text(signed_in, buildable):
    build = make_build(plan_of(2), buildable)
    first = make_target(build, "step-0", status="passed")
    second = make_target(build, "step-1", status="waiting")
    report(second, log_text="compiling widgets\nall done\n")
    html = page(signed_in, build)
    assert badge("passed") in html and badge("waiting") in html
    assert first.phid in html and second.phid in html
    assert "test_broken" in html and "test_ok" in html and "boom" in html
    assert "src/app.py:3" in html
    assert 'data-n="1" aria-label="Line 1"></a>compiling widgets\n</span>' in html
    assert 'data-n="2" aria-label="Line 2"></a>all done\n</span></pre>' in html


def test_unit_results_list_failures_first(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    report(make_target(build, "step-0"))  # creates test_ok, then test_broken
    html = page(signed_in, build)
    assert html.index("test_broken") < html.index("test_ok")


def test_targets_follow_the_plan_snapshot_order_and_unstarted_steps_show(signed_in, buildable):
    build = make_build(plan_of(3), buildable)
    make_target(build, "step-1", name="Second")  # created before step-0's target
    make_target(build, "step-0", name="First")
    html = page(signed_in, build)
    assert html.index('id="step-step-0"') < html.index('id="step-step-1"')
    assert html.index('id="step-step-1"') < html.index('id="step-step-2"')
    assert "not started" in html


def test_only_targets_of_the_current_generation_are_shown(signed_in, buildable):
    build = make_build(plan_of(1), buildable, generation=2)
    make_target(build, "step-0", generation=1, status="aborted", name="Old run")
    make_target(build, "step-0", generation=2, status="building", name="New run")
    html = page(signed_in, build)
    assert "New run" in html
    assert "Old run" not in html


def test_the_timeline_lists_build_and_target_events_in_order(signed_in, buildable, user):
    build = make_build(plan_of(1), buildable)
    target = make_target(build, "step-0")
    StatusEvent.objects.create(
        build=build, from_status="pending", to_status="building", cause="engine"
    )
    StatusEvent.objects.create(
        target=target, to_status="building", cause="worker", actor=user, detail="attempt 1"
    )
    html = page(signed_in, build)
    timeline = html[html.index('id="timeline"') :]
    assert timeline.index("engine") < timeline.index("attempt 1")
    assert "target Run step-0" in timeline
    assert "alice" in timeline


def test_messages_show_type_author_consumption_and_outcome(signed_in, buildable, user):
    build = make_build(plan_of(1), buildable)
    target = make_target(build, "step-0", status="passed")
    BuildMessage.objects.create(
        receiver_phid=target.phid,
        target=target,
        build=build,
        type="pass",
        author=user,
        is_consumed=True,
        outcome="target passed",
    )
    html = page(signed_in, build)
    messages = html[html.index(">Messages</caption>") :]
    assert "<td>pass</td>" in messages and "alice" in messages and "target passed" in messages


def test_a_work_message_reads_as_never_consumed_and_a_waiting_verdict_as_not_yet(
    signed_in, buildable
):
    build = make_build(plan_of(1), buildable)
    target = make_target(build, "step-0", status="waiting")
    for kind in ("work", "pass"):
        BuildMessage.objects.create(
            receiver_phid=target.phid, target=target, build=build, type=kind
        )
    messages = page(signed_in, build)
    rows = messages[messages.index(">Messages</caption>") :].split("<tr>")
    work = next(row for row in rows if "<td>work</td>" in row)
    verdict = next(row for row in rows if "<td>pass</td>" in row)
    assert "never (progress only)" in work and "not yet" not in work
    assert "not yet" in verdict


def test_the_live_region_polls_while_the_build_is_building(signed_in, buildable):
    build = make_build(plan_of(1), buildable, status="building")
    make_target(build, "step-0")
    assert POLL in page(signed_in, build)
    partial = page(signed_in, build, partial=True)
    assert partial.lstrip().startswith('<div id="build-poll"')
    assert POLL in partial and "?partial=1" in partial


def test_the_live_region_comes_back_without_a_trigger_once_the_build_passed(signed_in, buildable):
    build = make_build(plan_of(1), buildable, status="passed")
    make_target(build, "step-0", status="passed")
    for html in (page(signed_in, build), page(signed_in, build, partial=True)):
        assert 'id="build-poll"' in html
        assert "hx-trigger" not in html and "hx-get" not in html


def test_a_complete_build_with_an_unapplied_restart_keeps_polling(signed_in, buildable):
    build = make_build(plan_of(1), buildable, status="failed")
    BuildMessage.objects.create(receiver_phid=build.phid, build=build, type="restart")
    html = page(signed_in, build)
    assert "restarting" in html
    assert POLL in html


def test_an_unknown_build_is_404(signed_in):
    assert signed_in.get(reverse("build-detail", args=[999999])).status_code == 404


def test_a_long_log_shows_its_last_lines_numbered_with_a_link_to_the_viewer(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    text = "".join(f"line {n}\n" for n in range(1, 1001)) + "THE END"
    report(make_target(build, "step-0"), log_text=text)
    html = page(signed_in, build)
    log = BuildLog.objects.get()
    assert "The last 200 of 1001 lines." in html
    assert 'data-n="1001"' in html and 'data-n="802"' in html
    assert 'data-n="801"' not in html and "line 800\n" not in html
    assert f'href="{reverse("log-detail", args=[log.id])}?line=1001#L1001"' in html
    assert "THE END" in html


@pytest.mark.parametrize("value", ["²", "٣", "-1"])
def test_a_generation_that_is_not_ascii_digits_shows_the_current_run(signed_in, buildable, value):
    build = make_build(plan_of(1), buildable)
    response = signed_in.get(reverse("build-detail", args=[build.id]), {"generation": value})
    assert response.status_code == 200


def test_every_attempt_of_a_retried_step_shows_with_its_own_log(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    retry = {"retry": {"limit": 2, "on": ["failed"]}}
    first = make_target(
        build, "step-0", status="failed", failure="failed", superseded_by="retry", config=retry
    )
    second = make_target(
        build, "step-0", status="building", step_attempt=2, retries=1, config=retry
    )
    report(first, log_text="first attempt broke\n")
    report(second, log_text="second attempt runs\n")
    html = page(signed_in, build)
    assert "attempt 2 of 3" in html
    assert "Attempt 1" in html and "superseded by a retry" in html and first.phid in html
    # Each attempt's own numbered log: the first one's inside its "Attempt 1" section.
    earlier = html.split(f'id="t{first.id}-attempt"', 1)[1]
    assert "first attempt broke\n</span>" in earlier
    assert "second attempt runs\n</span>" in html.split(f'id="t{first.id}-attempt"', 1)[0]
    # The step list shows the current attempt only.
    assert html.count('id="step-step-0"') == 1
