"""Read-only queries behind the web UI, each loading its rows in a fixed number of queries.

Nothing here changes a status: these only select, annotate and arrange rows for display, so
the build list and the build page cost the same number of queries for one build or a
thousand, one target or fifty (guarded by ``tests/ui/test_queries.py``).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from django.contrib.auth import get_user_model
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
    Artifact,
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
from builds.numbers import ascii_int

# Unit results that need attention sort before the rest (pass, skip).
FAILING_RESULTS = ("fail", "broken", "unsound")

Item = TypeVar("Item")


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


def filtered_builds(
    status: str = "",
    plan_id: int | None = None,
    buildable: str = "",
    initiator: str = "",
) -> QuerySet[Build]:
    """The build list: every build, or those matching each filter given: ``status``, plan
    ``plan_id``, ``buildable`` (a buildable id, or text found in its repository or ref, or
    the start of its commit) and ``initiator`` (a username)."""
    builds = Build.objects.all()
    if status:
        builds = builds.filter(status=status)
    if plan_id is not None:
        builds = builds.filter(plan_id=plan_id)
    if buildable:
        builds = builds.filter(buildable_matching(buildable))
    if initiator:
        builds = builds.filter(initiator__username=initiator)
    return builds_for_display(builds)


def buildable_matching(text: str) -> Q:
    """A filter on builds whose buildable is ``text``: an id, or a piece of its repository
    or ref, or the start of its commit."""
    if (buildable_id := ascii_int(text)) is not None:
        return Q(buildable_id=buildable_id)
    return (
        Q(buildable__repository__icontains=text)
        | Q(buildable__ref__icontains=text)
        | Q(buildable__commit__istartswith=text)
    )


def initiators():
    """Usernames of the users who started at least one build, sorted (the list's filter)."""
    users = get_user_model().objects.filter(build__isnull=False).distinct()
    return users.order_by("username").values_list("username", flat=True)


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


def targets_of_generation(build: Build, generation: int) -> list[BuildTarget]:
    """The build's targets of ``generation``, with messages (and authors), unit results
    (failures first), lint messages, artifacts and logs (with chunks) prefetched."""
    targets = build.targets.filter(generation=generation).prefetch_related(
        Prefetch(
            "messages",
            queryset=BuildMessage.objects.select_related("author").order_by("id"),
        ),
        Prefetch("unit_results", queryset=unit_results_failures_first()),
        "lint_messages",
        Prefetch("artifacts", queryset=Artifact.objects.order_by("key", "id")),
        Prefetch(
            "logs",
            queryset=BuildLog.objects.prefetch_related(
                Prefetch("chunks", queryset=BuildLogChunk.objects.order_by("id"))
            ),
        ),
    )
    return list(targets)


def current_targets(build: Build) -> list[BuildTarget]:
    """The build's targets of its current generation, prefetched as
    :func:`targets_of_generation` does."""
    return targets_of_generation(build, build.generation)


def in_dependency_order(
    items: Iterable[Item], key: Callable[[Item], str], depends_on: Callable[[Item], list]
) -> list[Item]:
    """``items`` ordered so each follows the items it depends on (Kahn's algorithm), ties
    kept in their given order. Items in a cycle or depending on a missing key follow at
    the end in their given order, so nothing is hidden."""
    pending = list(items)
    placed: set[str] = set()
    ordered: list[Item] = []
    while True:
        ready = next(
            (item for item in pending if all(dep in placed for dep in depends_on(item) or [])),
            None,
        )
        if ready is None:
            return ordered + pending
        ordered.append(ready)
        placed.add(key(ready))
        pending.remove(ready)


@dataclass(frozen=True)
class StepRow:
    """One step of a build's plan snapshot with its target in the generation shown, if
    any, and when that target entered its present status (None when unknown)."""

    step: dict
    target: BuildTarget | None
    since: datetime | None = None


def steps_with_targets(
    build: Build, targets: list[BuildTarget], since: dict[int, datetime] | None = None
) -> list[StepRow]:
    """Pair each step of ``build.plan_snapshot``, in dependency order, with its target;
    targets whose step is missing from the snapshot follow at the end, so nothing is
    hidden. ``since`` maps target ids to when they entered their present status."""
    since = since or {}
    by_key = {target.step_key: target for target in targets}
    steps = in_dependency_order(
        build.plan_snapshot, key=lambda s: s.get("key"), depends_on=lambda s: s.get("depends_on")
    )
    rows = []
    for step in steps:
        target = by_key.pop(step.get("key"), None)
        rows.append(StepRow(step, target, since.get(target.pk) if target else None))
    extra = [
        StepRow({"key": t.step_key, "name": t.name}, t, since.get(t.pk)) for t in by_key.values()
    ]
    return rows + extra


def status_since(events: Iterable[StatusEvent]) -> dict[int, datetime]:
    """Target id → when its last status event happened (the start of its present status),
    from a build's timeline, so the page needs no query per target for it."""
    since: dict[int, datetime] = {}
    for event in events:
        if event.target_id:
            since[event.target_id] = event.at
    return since


def external_links(targets: list[BuildTarget]) -> list[Artifact]:
    """The ``uri`` artifacts of ``targets`` marked ``ui.external``, with an http(s) URI:
    the links a build page shows at the top (Harbormaster's external URI artifacts)."""
    links = []
    for target in targets:
        for artifact in target.artifacts.all():
            if artifact.artifact_type == Artifact.Type.URI and artifact.data.get("ui.external"):
                if safe_uri(artifact.data.get("uri")):
                    links.append(artifact)
    return links


def safe_uri(uri) -> bool:
    """Whether ``uri`` may be a link's href: http or https only (never ``javascript:``)."""
    return isinstance(uri, str) and uri.lower().startswith(("http://", "https://"))


def build_timeline(build: Build) -> list[StatusEvent]:
    """Status events of the build and of its targets (every generation), oldest first."""
    return list(
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


def status_counts(statuses: Iterable[str]) -> list[tuple[str, int]]:
    """``[(status, how many)]`` for the given statuses, most frequent first."""
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
