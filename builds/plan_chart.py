"""A plan's recent builds as a bar chart (SVG, drawn by ``templates/builds/_plan_chart.html``):
one bar per build, oldest on the left, its height the build's duration and its colour its
outcome; with the pass rate of the completed ones. A slowdown shows as rising bars, a run
of failures as a run of red.
"""

from dataclasses import dataclass

from django.utils import timezone

from builds.models import Build

CHART_BUILDS = 50
BAR_WIDTH = 14
BAR_GAP = 4
PLOT_HEIGHT = 120
AXIS = 44  # room on the left for the duration scale
TOP = 12


@dataclass(frozen=True)
class Bar:
    """One build's bar: its build, status, duration in seconds (so far while it runs) and
    where it is drawn."""

    build: Build
    status: str
    seconds: float
    x: int
    y: int
    height: int
    running: bool


@dataclass(frozen=True)
class Chart:
    """The bars, the longest duration (the top of the scale), the pass rate (0-1, None
    without completed builds) and the counts it comes from, and the drawing's size."""

    bars: list[Bar]
    longest: float
    pass_rate: float | None
    passed: int
    completed: int
    width: int
    height: int
    bar_width: int = BAR_WIDTH
    plot_top: int = TOP
    plot_bottom: int = TOP + PLOT_HEIGHT
    axis: int = AXIS


def seconds_of(build: Build, now) -> float:
    """A build's duration: creation to completion (``date_completed``, annotated by
    ``queries.builds_for_display``), or to ``now`` while it runs."""
    end = getattr(build, "date_completed", None) if build.is_complete else now
    return max((end - build.date_created).total_seconds(), 0.0) if end else 0.0


def chart(builds: list[Build], statuses: list[str]) -> Chart:
    """The chart of ``builds`` (newest first, as ``builds_for_display`` gives them) with
    the status shown for each (``statuses``, the same order)."""
    now = timezone.now()
    pairs = list(zip(builds, statuses, strict=True))[::-1]  # oldest first, left to right
    durations = [seconds_of(build, now) for build, _ in pairs]
    longest = max(durations, default=0.0) or 1.0
    bars = []
    for index, ((build, status), seconds) in enumerate(zip(pairs, durations, strict=True)):
        height = max(2, round(PLOT_HEIGHT * seconds / longest))
        x, y = AXIS + index * (BAR_WIDTH + BAR_GAP), TOP + PLOT_HEIGHT - height
        bars.append(Bar(build, status, seconds, x, y, height, not build.is_complete))
    completed = [build for build, _ in pairs if build.is_complete]
    passed = sum(1 for build in completed if build.status == Build.Status.PASSED)
    rate = passed / len(completed) if completed else None
    width = AXIS + max(len(bars), 1) * (BAR_WIDTH + BAR_GAP) + 8
    return Chart(bars, longest, rate, passed, len(completed), width, TOP + PLOT_HEIGHT + 8)
