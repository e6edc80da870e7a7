"""Read-only queries behind the web UI, each loading its rows in a fixed number of queries.

Nothing here changes a status: these only select, annotate and arrange rows for display, so
the build list and the build page cost the same number of queries for one build or a
thousand, one target or fifty (guarded by ``tests/ui/test_queries.py``).
"""

from dataclasses import dataclass

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import (
    Case,
    Count,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    When,
)
from django.db.models import Value as V

from builds import engine
from builds.models import (
    Build,
    Buildable,
    BuildLog,
    BuildLogChunk,
    BuildMessage,
    BuildPlan,
    BuildStep,
    BuildTarget,
    StatusEvent,
    UnitResult,
)

# Unit results that need attention sort before the rest (pass, skip).
FAILING_RESULTS = ("fail", "broken", "unsound")


def unconsumed_commands() -> ArraySubquery:
    """The types of a build's unconsumed command messages, in id order (an array subquery),
    which is what ``engine.derived_status`` needs to tell ``restarting`` etc. without a query
    per build."""
    commands = BuildMessage.objects.filter(
        build=OuterRef("pk"), is_consumed=False, type__in=BuildMessage.COMMANDS
    )
    return ArraySubquery(commands.order_by("id").values("type"))


def completion_time() -> Subquery:
    """When a build last became complete, from its timeline, or NULL (a subquery)."""
    events = StatusEvent.objects.filter(
        build=OuterRef("pk"), target__isnull=True, to_status__in=Build.COMPLETE
    )
    return Subquery(events.order_by("-at", "-id").values("at")[:1])


def builds_for_display(builds: QuerySet[Build] | None = None) -> QuerySet[Build]:
    """Builds with plan, buildable and initiator joined, newest first, annotated with
    ``unconsumed_commands`` (list[str]) and ``date_completed`` (datetime | None)."""
    builds = Build.objects.all() if builds is None else builds
    return (
        builds.select_related("plan", "buildable", "initiator")
        .annotate(unconsumed_commands=unconsumed_commands(), date_completed=completion_time())
        .order_by("-id")
    )


def filtered_builds(status: str = "", plan_id: int | None = None) -> QuerySet[Build]:
    """The build list: every build, or those with ``status`` and/or of plan ``plan_id``."""
    builds = Build.objects.all()
    if status:
        builds = builds.filter(status=status)
    if plan_id is not None:
        builds = builds.filter(plan_id=plan_id)
    return builds_for_display(builds)


def shown_status(build: Build) -> str:
    """The status to show for a build loaded by :func:`builds_for_display`: the engine's
    derived ``restarting``/``aborting``/``pausing``/``resuming`` while such a command waits,
    else the stored status."""
    return engine.derived_status(build, build.unconsumed_commands)


def is_live(build: Build, status_shown: str) -> bool:
    """Whether a build may still change: not complete, or a command is waiting for it."""
    return not build.is_complete or status_shown != build.status


def unit_results_failures_first() -> QuerySet[UnitResult]:
    """Unit results ordered failing results first, then by namespace and name."""
    failing = Case(
        When(result__in=FAILING_RESULTS, then=V(0)), default=V(1), output_field=IntegerField()
    )
    return UnitResult.objects.order_by(failing, "namespace", "name", "id")


def current_targets(build: Build) -> list[BuildTarget]:
    """The build's targets of its current generation, with messages (and authors), unit
    results (failures first), lint messages and logs (with chunks) prefetched."""
    targets = build.targets.filter(generation=build.generation).prefetch_related(
        Prefetch(
            "messages",
            queryset=BuildMessage.objects.select_related("author").order_by("id"),
        ),
        Prefetch("unit_results", queryset=unit_results_failures_first()),
        "lint_messages",
        Prefetch(
            "logs",
            queryset=BuildLog.objects.prefetch_related(
                Prefetch("chunks", queryset=BuildLogChunk.objects.order_by("id"))
            ),
        ),
    )
    return list(targets)


@dataclass(frozen=True)
class StepRow:
    """One step of a build's plan snapshot with its current-generation target, if any."""

    step: dict
    target: BuildTarget | None


def steps_with_targets(build: Build, targets: list[BuildTarget]) -> list[StepRow]:
    """Pair each step of ``build.plan_snapshot`` (in order) with its target; targets whose
    step is missing from the snapshot follow at the end, so nothing is hidden."""
    by_key = {target.step_key: target for target in targets}
    rows = [StepRow(step, by_key.pop(step.get("key"), None)) for step in build.plan_snapshot]
    extra = [StepRow({"key": t.step_key, "name": t.name}, t) for t in by_key.values()]
    return rows + extra


def build_timeline(build: Build) -> QuerySet[StatusEvent]:
    """Status events of the build and of its targets (every generation), oldest first."""
    return (
        StatusEvent.objects.filter(Q(build=build) | Q(target__build=build))
        .select_related("actor", "target")
        .order_by("at", "id")
    )


def plans_for_display() -> QuerySet[BuildPlan]:
    """Plans by name, annotated with ``step_count`` and ``build_count``."""
    return BuildPlan.objects.annotate(
        step_count=Count("steps", distinct=True), build_count=Count("builds", distinct=True)
    ).order_by("name")


def plan_with_steps(plan_id: int) -> QuerySet[BuildPlan]:
    """The plan ``plan_id`` with its steps prefetched in sequence order."""
    return BuildPlan.objects.filter(pk=plan_id).prefetch_related(
        Prefetch("steps", queryset=BuildStep.objects.order_by("sequence", "id"))
    )


def buildable_builds(buildable: Buildable) -> QuerySet[Build]:
    """A buildable's builds, newest first, ready for display."""
    return builds_for_display(buildable.builds.all())
