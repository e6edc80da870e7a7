"""The plan page's chart of its last builds: one bar per build, oldest on the left, height
by duration, colour by outcome, and the pass rate of the completed ones."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from builds.models import Build, StatusEvent
from tests.ui.conftest import make_build, plan_of

pytestmark = pytest.mark.django_db


def finished(plan, buildable, status: str, seconds: int) -> Build:
    build = make_build(plan, buildable, status=status)
    start = timezone.now() - timedelta(hours=1)
    Build.objects.filter(pk=build.pk).update(date_created=start)
    StatusEvent.objects.create(
        build=build, from_status="building", to_status=status, cause="worker"
    )
    StatusEvent.objects.filter(build=build).update(at=start + timedelta(seconds=seconds))
    return build


def bars(html: str) -> list[tuple[str, str, int]]:
    """(build id, tone, bar height) of each bar, left to right."""
    found = re.findall(
        r'class="bar tone-(\w+) status-[\w-]+[^"]*" data-build="(\d+)">.*?height="(\d+)"',
        html,
        re.S,
    )
    return [(build, tone, int(height)) for tone, build, height in found]


def test_bars_show_duration_and_outcome_oldest_first_with_the_pass_rate(signed_in, buildable):
    plan = plan_of(1)
    slow_fail = finished(plan, buildable, "failed", 600)
    quick_pass = finished(plan, buildable, "passed", 60)
    long_pass = finished(plan, buildable, "passed", 300)
    running = make_build(plan, buildable, status="building")
    html = signed_in.get(reverse("plan-detail", args=[plan.id])).content.decode()
    shown = bars(html)
    assert [build for build, _, _ in shown] == [
        str(b.id) for b in (slow_fail, quick_pass, long_pass, running)
    ]
    assert [tone for _, tone, _ in shown] == ["bad", "ok", "ok", "run"]
    heights = [height for _, _, height in shown]
    assert heights[0] == 120 and heights[1] == 12 and heights[2] == 60
    assert "Pass rate: <strong>67 %</strong> (2 of 3 completed builds passed)" in html


def test_the_chart_covers_the_last_50_builds(signed_in, buildable):
    plan = plan_of(1)
    for _ in range(55):
        make_build(plan, buildable, status="passed")
    html = signed_in.get(reverse("plan-detail", args=[plan.id])).content.decode()
    assert len(bars(html)) == 50
    assert "last 50 builds, oldest on the left" in html


def test_a_plan_without_builds_draws_no_chart(signed_in):
    html = signed_in.get(reverse("plan-detail", args=[plan_of(1).id])).content.decode()
    assert "No builds of this plan yet." in html
    assert "Pass rate" not in html and "plan-chart" not in html
