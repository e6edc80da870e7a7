"""A build's progress told in lines of text, for ``manage.py build --wait``.

Read from the build's timeline (its StatusEvents), so every change is told once, with the
time it happened, even when several happen between two looks. A target that failed or was
aborted is told with its reason and its unit results; the build's end with one line that
says why. Nothing here changes anything.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from builds.logs import HARBOR_SOURCE
from builds.models import Build, BuildLogChunk, BuildTarget, StatusEvent, UnitResult
from builds.unit_results import FAILING_RESULTS

FAILURES_NAMED = 5


@dataclass(frozen=True)
class UnitSummary:
    """A target's unit results counted: failed counts ``fail``, ``broken`` and
    ``unsound``; ``first_failures`` names at most ``FAILURES_NAMED``, in the order sent."""

    passed: int
    failed: int
    skipped: int
    first_failures: list[str]

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    def __str__(self) -> str:
        counts = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        if not self.first_failures:
            return counts
        more = ", …" if self.failed > len(self.first_failures) else ""
        return f"{counts}; failed: {', '.join(self.first_failures)}{more}"


def new_events(build_id: int, seen: set[int]) -> list[StatusEvent]:
    """The build's and its targets' events not in ``seen`` (event ids, updated here), in
    the order they happened. By id set rather than "after the last id": an event can
    commit after one with a higher id."""
    events = (
        StatusEvent.objects.filter(build_id=build_id)
        .exclude(id__in=seen)
        .select_related("target", "message__author")
        .order_by("at", "id")
    )
    events = list(events)
    seen.update(event.id for event in events)
    return events


def event_lines(event: StatusEvent, build_started: datetime) -> list[str]:
    """``HH:MM:SS +M:SS subject: from -> to`` (local time, time since the build started),
    then, for a target that failed or was aborted, its reason and unit results."""
    when = event.at.astimezone().strftime("%H:%M:%S")
    change = f"{event.from_status} -> {event.to_status}" if event.from_status else event.to_status
    subject = target_label(event.target) if event.target else "build"
    lines = [f"{when} +{duration(event.at - build_started)} {subject}: {change}"]
    if event.target and event.to_status in BuildTarget.FAILED_STATES:
        lines.append(f"    reason: {failure_reason(event)}")
        tests = unit_summary(event.target_id)
        if tests.total:
            lines.append(f"    tests: {tests}")
    return lines


def failure_reason(event: StatusEvent) -> str:
    """Why the target of ``event`` failed or was aborted: the deciding message, else the
    last line of Harbor's own log of the target (a step's error), else the event's
    detail (a timeout, an abort)."""
    if event.message:
        author = event.message.author
        sender = f" from {author.username}" if author else ""
        return f'"{event.message.type}" message {event.message.id}{sender}'
    last_line = harbor_log_last_line(event.target_id)
    return last_line or event.detail or "no reason recorded"


def harbor_log_last_line(target_id: int) -> str:
    """The last non-blank line of the target's ``harbor`` logs, or ``""``."""
    chunks = BuildLogChunk.objects.filter(log__target_id=target_id, log__source=HARBOR_SOURCE)
    for text in chunks.order_by("-log_id", "-id").values_list("text", flat=True):
        lines = [line for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return ""


def unit_summary(target_id: int) -> UnitSummary:
    """The target's unit results counted (two queries)."""
    results = list(UnitResult.objects.filter(target_id=target_id).values_list("result", flat=True))
    failures = UnitResult.objects.filter(target_id=target_id, result__in=FAILING_RESULTS)
    names = failures.order_by("id").values_list("name", flat=True)[:FAILURES_NAMED]
    return UnitSummary(
        passed=results.count("pass"),
        failed=sum(results.count(result) for result in FAILING_RESULTS),
        skipped=results.count("skip"),
        first_failures=list(names),
    )


def ending_line(build: Build) -> str:
    """The last line for a complete build, e.g. ``build 12 failed: step "tests" failed
    (3 of 120 tests failed)``, or ``build 12 aborted: <detail of the event>``."""
    if build.status == Build.Status.PASSED:
        return f"build {build.id} passed"
    if build.status == Build.Status.FAILED:
        failed = build.targets.filter(generation=build.generation, status="failed")
        target = failed.order_by("date_completed", "id").first()
        if target is not None:
            return f'build {build.id} failed: step "{target.step_key}" failed ({why(target)})'
    event = build.events.filter(target__isnull=True, to_status=build.status).last()
    detail = f": {event.detail}" if event and event.detail else ""
    return f"build {build.id} {build.status}{detail}"


def why(target: BuildTarget) -> str:
    """A failed target's failing tests (``3 of 120 tests failed``), else its reason."""
    tests = unit_summary(target.id)
    if tests.failed:
        return f"{tests.failed} of {tests.total} tests failed"
    events = target.events.filter(to_status=target.status).select_related("message__author")
    event = events.last()
    return failure_reason(event) if event else "no reason recorded"


def target_label(target: BuildTarget) -> str:
    """``target <step key>``, with the generation once a restart has made more than one."""
    if target.generation > 1:
        return f"target {target.step_key} (generation {target.generation})"
    return f"target {target.step_key}"


def duration(elapsed: timedelta) -> str:
    """``M:SS``, or ``H:MM:SS`` from an hour on; never negative."""
    seconds = max(0, int(elapsed.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"
