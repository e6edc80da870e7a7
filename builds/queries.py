"""Read-only queries behind the web UI, each loading its rows in a fixed number of queries.

Nothing here changes a status: these only select, annotate and arrange rows for display, so
the build list and the build page cost the same number of queries for one build or a
thousand, one target or fifty (guarded by ``tests/ui/test_queries.py``).
"""

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from django.contrib.auth import get_user_model
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import (
    Count,
    F,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Window,
)
from django.db.models.functions import Coalesce

from builds import engine, log_view
from builds.engine.concurrency import places_ahead_of_outer
from builds.engine.stuck import past_stuck_after
from builds.logs import OctetLength
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
    LintMessage,
    StatusEvent,
    UnitResult,
)
from builds.numbers import ascii_int
from builds.unit_results import count_annotations

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
        builds.select_related("plan", "buildable", "initiator", "plan_version")
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


def targets_of_generation(build: Build, generation: int) -> list[BuildTarget]:
    """The build's targets of ``generation`` (every attempt), with messages (and authors),
    lint messages, artifacts and logs (with chunks) prefetched, and their unit results
    counted by result (``builds.unit_results.count_annotations``), not loaded: a run may
    have thousands."""
    targets = build.targets.filter(generation=generation).annotate(**count_annotations())
    targets = targets.prefetch_related(
        Prefetch(
            "messages",
            queryset=BuildMessage.objects.select_related("author").order_by("id"),
        ),
        "lint_messages",
        Prefetch("artifacts", queryset=Artifact.objects.order_by("key", "id")),
        Prefetch("logs", queryset=logs_with_tails()),
    )
    return list(targets)


def logs_with_tails() -> QuerySet[BuildLog]:
    """Logs annotated with ``newline_total`` (line breaks in all) and ``first_chunk`` (its
    first chunk's id), with ``tail_chunks``: the last chunks holding its last
    ``log_view.TAIL_BYTES`` bytes or more, newest first. The build page shows a log's
    tail from these without reading the rest of the log, however large."""
    from_end = Window(Sum(OctetLength("text")), partition_by="log_id", order_by="-id")
    tail = BuildLogChunk.objects.annotate(bytes_from_end=from_end - OctetLength("text"))
    tail = tail.filter(bytes_from_end__lt=log_view.TAIL_BYTES).order_by("-id")
    return BuildLog.objects.annotate(
        newline_total=Coalesce(Sum("chunks__newlines"), 0), first_chunk=Min("chunks__id")
    ).prefetch_related(Prefetch("chunks", queryset=tail, to_attr="tail_chunks"))


def logs_of_generation(build: Build, generation: int) -> list[BuildLog]:
    """The logs of the build's targets of ``generation``, as ``logs_with_tails`` loads them."""
    logs = logs_with_tails().filter(target__build=build, target__generation=generation)
    return list(logs.order_by("id"))


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
    # The step's superseded attempts in this run (retried or rerun), latest first.
    earlier: list[BuildTarget] = field(default_factory=list)


def steps_with_targets(
    build: Build, targets: list[BuildTarget], since: dict[int, datetime] | None = None
) -> list[StepRow]:
    """Pair each step of ``build.plan_snapshot``, in dependency order, with its target;
    targets whose step is missing from the snapshot follow at the end, so nothing is
    hidden. ``since`` maps target ids to when they entered their present status."""
    since = since or {}
    by_key = {target.step_key: target for target in targets if not target.superseded_by}
    earlier: dict[str, list[BuildTarget]] = {}
    for target in sorted(targets, key=lambda t: -t.step_attempt):
        if target.superseded_by:
            earlier.setdefault(target.step_key, []).append(target)
    steps = in_dependency_order(
        build.plan_snapshot, key=lambda s: s.get("key"), depends_on=lambda s: s.get("depends_on")
    )
    rows = []
    for step in steps:
        target = by_key.pop(step.get("key"), None)
        before = earlier.get(step.get("key"), [])
        rows.append(StepRow(step, target, since.get(target.pk) if target else None, before))
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
    """The ``uri`` artifacts of ``targets`` (with their artifacts prefetched, as
    :func:`targets_of_generation` loads them) marked ``ui.external``, with an http(s) URI:
    the links a build page shows at the top (Harbormaster's external URI artifacts), in key
    order. Pass only current targets: a superseded attempt's links are not current. No
    query."""
    links = []
    for target in targets:
        for artifact in target.artifacts.all():
            if artifact.artifact_type == Artifact.Type.URI and artifact.data.get("ui.external"):
                if safe_uri(artifact.data.get("uri")):
                    links.append(artifact)
    return sorted(links, key=lambda artifact: (artifact.key, artifact.id))


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


def _of_build(model, build_path: str, aggregate=None, **conditions) -> Subquery:
    """``aggregate`` (default ``Max("id")``) over ``model``'s rows whose ``build_path`` is
    the outer build and that match ``conditions`` (a subquery; NULL when there are none)."""
    rows = model.objects.filter(**{build_path: OuterRef("pk")}, **conditions).order_by()
    value = Max("id") if aggregate is None else aggregate
    return Subquery(rows.values(build_path).annotate(value=value).values("value"))


def newest_unit_result() -> Subquery:
    """The id of the outer target's newest unit result (a subquery; one probe of the index
    ``unit_result_target_newest``, where a maximum over the build's rows would read them
    all)."""
    newest = UnitResult.objects.filter(target=OuterRef("pk")).order_by("-id").values("id")
    return Subquery(newest[:1])


# The live region's sections and the fingerprint parts each shows (see live_versions).
LIVE_SECTIONS = {
    "head": ("status", "generation", "date_modified", "event", "message", "consumed", "artifact"),
    "steps": ("status", "generation", "target", "target_event", "attempts"),
    "units": ("generation", "unit"),
    "targets": (
        *("status", "generation", "target", "target_event", "attempts", "message"),
        *("consumed", "unit", "lint", "artifact", "log", "open_logs", "queue", "stuck"),
    ),
    "logs": ("generation", "chunk", "log", "open_logs"),
    "timeline": ("generation", "event", "target_event"),
}


def queue_places() -> ArraySubquery:
    """The places ahead of each of the outer build's targets queued for a concurrency
    group (``concurrency.places_ahead``), in target id order (an array subquery)."""
    queued = BuildTarget.objects.filter(
        build_id=OuterRef("pk"), status=BuildTarget.Status.PENDING, date_admitted=None
    ).exclude(concurrency_group="")
    ahead = queued.annotate(ahead=places_ahead_of_outer()).order_by("id").values("ahead")
    return ArraySubquery(ahead)


def stuck_count() -> Subquery:
    """How many of the outer build's current targets are stuck (``harbor_ui.is_stuck``):
    pending, building or waiting since (their newest status event) longer ago than their
    step's ``stuck_after`` seconds (a subquery; NULL when none are)."""
    stuck = past_stuck_after(BuildTarget.objects.filter(build_id=OuterRef("pk"))).order_by()
    return Subquery(stuck.values("build_id").annotate(n=Count("id")).values("n"))


def live_versions(build_id: int) -> dict[str, str] | None:
    """A fingerprint of each section of the build page's live region (``LIVE_SECTIONS``)
    of build ``build_id``, in one query, or None if there is no such build. Parts change
    whenever the build or one of its targets changes status, a message arrives or is
    consumed, a unit result, lint message, artifact or log chunk is added, or a log is
    closed (rows are only ever added, so the largest ids and times say it). Compute them
    before reading what the region shows: a change landing in between then only costs one
    more render, never a missed one."""
    fingerprint = {
        "event": _of_build(StatusEvent, "build"),
        "target_event": _of_build(StatusEvent, "target__build"),
        "target": _of_build(BuildTarget, "build"),
        "attempts": _of_build(BuildTarget, "build", Sum("attempt")),
        "message": _of_build(BuildMessage, "build"),
        "consumed": _of_build(BuildMessage, "build", Count("id"), is_consumed=True),
        "unit": _of_build(BuildTarget, "build", Max(newest_unit_result())),
        "lint": _of_build(LintMessage, "target__build"),
        "artifact": _of_build(Artifact, "build"),
        "chunk": _of_build(BuildLogChunk, "log__target__build"),
        "log": _of_build(BuildLog, "target__build"),
        "open_logs": _of_build(BuildLog, "target__build", Count("id"), is_live=True),
        # What the build's own rows do not say: its queued targets' places in their groups'
        # queues (moved by other builds), and targets that became stuck as time passed.
        "queue": queue_places(),
        "stuck": stuck_count(),
    }
    row = (
        Build.objects.filter(pk=build_id)
        .annotate(**fingerprint)
        .values("status", "generation", "date_modified", *fingerprint)
        .first()
    )
    if row is None:
        return None
    return {
        section: _digest([row[part] for part in parts]) for section, parts in LIVE_SECTIONS.items()
    }


def _digest(values: list) -> str:
    return hashlib.blake2b(repr(values).encode(), digest_size=6).hexdigest()


def encode_versions(versions: dict[str, str]) -> str:
    """Section versions as a query-string value: ``head.1a2b,steps.3c4d,…``."""
    return ",".join(f"{section}.{version}" for section, version in versions.items())


def changed_sections(versions: dict[str, str], shown: str) -> list[str]:
    """The sections whose version differs from ``shown`` (``encode_versions`` of what a
    page shows; every section when it is missing or malformed), in ``LIVE_SECTIONS`` order."""
    pairs = dict(part.partition(".")[::2] for part in shown.split(",") if "." in part)
    return [section for section, version in versions.items() if pairs.get(section) != version]


def waiting_targets(limit: int = 500) -> QuerySet[BuildTarget]:
    """Every waiting target (the current attempt of its step in its build's current run:
    a superseded attempt is no longer what the build waits on), the longest waiting first, at
    most ``limit``; with its build and plan joined and annotated with ``waiting_since``
    (when it started waiting: its newest ``waiting`` status event) and ``message_count``.
    One query."""
    waiting_since = (
        StatusEvent.objects.filter(target_id=OuterRef("pk"), to_status=BuildTarget.Status.WAITING)
        .order_by("-id")
        .values("at")[:1]
    )
    return (
        BuildTarget.objects.filter(
            status=BuildTarget.Status.WAITING,
            generation=F("build__generation"),
            superseded_by="",
        )
        .select_related("build__plan")
        .annotate(waiting_since=Subquery(waiting_since), message_count=Count("messages"))
        .order_by(F("waiting_since").asc(nulls_first=True), "id")[:limit]
    )
