"""Concurrency groups: at most ``limit`` targets of a group building or waiting at once,
across every build and plan, started first in, first out (docs/design.md §6.10).

A step with ``concurrency: {group: "deploy-${buildable.ref}", limit: 1}`` gets targets
whose ``concurrency_group`` is the group's name with the target's variables in it. Such a
target is created ``pending`` and is not queued to run: it is *queued for its group* until
a pass over its build admits it (sets ``date_admitted``) and queues it; the worker will not
claim a group's target that was not admitted (``targets._claimable``).

What holds a slot: an admitted target that is not complete: admitted and still pending (its
run_target is on the way), building (a lapsed lease included: the target will be claimed
again where it stopped, so freeing its slot meanwhile would let two run at once), or
waiting. A slot frees itself when its target completes (passes, fails, is aborted, or fails
after losing its worker too often), whatever path completed it, since admission counts only
the statuses. The queue: the group's targets not admitted and pending, of building builds
(a paused build's target keeps no place ahead of others), in id (creation) order.

Why a row per group, locked ``FOR UPDATE``: a pass holds only its own build's row lock, so
two passes over different builds could otherwise each count the same free slot and both
admit. The pass locks the ``ConcurrencyGroup`` row of each group it admits into before
counting, and keeps the lock until its commit, so decisions about one group take turns, and
each counts every admission committed before it (READ COMMITTED: each statement sees what
committed before it began). Rows rather than advisory locks: they need no key scheme, are
created on first use and show in the admin. Lock order: the build's row, then group rows in
name order, then target rows (docs/design.md §3.2), so two passes needing the same groups
cannot deadlock.

A freed slot must start the next target of the queue, which belongs to another build: the
pass over the build whose target completed marks that target's completion as announced
(``slot_released``, a conditional update, so a replayed pass announces it once) and, after
commit, requests an update of the builds at the head of the group's queue. The repair task
wakes a queue whose wake-up was lost (a crash between the commit and the request).
"""

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from builds.engine.targets import request_update
from builds.models import Build, BuildTarget, ConcurrencyGroup
from builds.variables import VARIABLE

T = BuildTarget.Status
UNFINISHED = (T.PENDING, T.BUILDING, T.WAITING)
# How many builds at the head of a group's queue a freed slot wakes.
WAKE_AT_MOST = 20


def step_concurrency(step: dict) -> dict | None:
    """A snapshot step's ``concurrency`` option (``{"group", "limit"}``), or None."""
    return (step.get("config") or {}).get("concurrency")


def group_name(step: dict, variables: dict[str, str | None]) -> str:
    """The name of ``step``'s concurrency group for a target with ``variables`` ("" if the
    step has none); a variable without a value (a missing build parameter) becomes ""."""
    concurrency = step_concurrency(step)
    if not concurrency:
        return ""
    name = VARIABLE.sub(lambda m: variables.get(m.group(1)) or "", concurrency["group"])
    return name[: BuildTarget._meta.get_field("concurrency_group").max_length]


def uses_groups(build: Build) -> bool:
    """Whether any step of ``build``'s snapshot has a concurrency group (if none, the pass
    spends no query on groups)."""
    return any(step_concurrency(step) for step in build.plan_snapshot)


def startable(build: Build, created: list[BuildTarget]) -> tuple[int, ...]:
    """The ids of targets this pass may queue to run: those of ``created`` outside any
    group, and those of the build's current run it admits now into their groups. Call it
    under the build's row lock, in the pass's transaction."""
    free = [t.pk for t in created if not t.concurrency_group]
    if not uses_groups(build):
        return tuple(free)
    return (*free, *admit_queued(build))


def admit_queued(build: Build) -> list[int]:
    """Admit the build's queued targets (current run) whose turn has come; return their
    ids. Each group's row is locked first, groups in name order (module docstring)."""
    queued = list(
        BuildTarget.objects.filter(
            build_id=build.pk, generation=build.generation, status=T.PENDING, date_admitted=None
        ).exclude(concurrency_group="")
    )
    admitted = []
    for name in sorted({target.concurrency_group for target in queued}):
        lock_group(name)
        mine = {t.pk: t for t in queued if t.concurrency_group == name}
        admitted += _admit_in_group(name, mine)
    return admitted


def lock_group(name: str) -> None:
    """Lock group ``name``'s row ``FOR UPDATE`` until the transaction ends, creating it
    first if needed (an insert that a concurrent one of the same name makes wait, then
    skip)."""
    ConcurrencyGroup.objects.bulk_create([ConcurrencyGroup(name=name)], ignore_conflicts=True)
    ConcurrencyGroup.objects.select_for_update().get(name=name)


def _admit_in_group(name: str, mine: dict[int, BuildTarget]) -> list[int]:
    """Walk the group's queue from its head: each target of another build ahead of ours
    keeps the slot it will be admitted to (first in, first out); ours are admitted while
    slots are left. Only the first ``limit`` places can get a slot, so only they are read."""
    holders = slot_holders(name).count()
    admitted, ahead = [], 0
    now = timezone.now()
    window = max(_limit(target) for target in mine.values())
    for target_id in queue(name).values_list("pk", flat=True)[:window]:
        target = mine.get(target_id)
        if target is None:
            ahead += 1
            continue
        if holders + ahead >= _limit(target):
            break
        # Conditional, as every transition: a replayed pass admits nothing twice.
        if BuildTarget.objects.filter(pk=target_id, status=T.PENDING, date_admitted=None).update(
            date_admitted=now
        ):
            admitted.append(target_id)
            holders += 1
    return admitted


def _limit(target: BuildTarget) -> int:
    return int(target.config["concurrency"]["limit"])


def slot_holders(name: str) -> QuerySet[BuildTarget]:
    """The targets holding a slot of group ``name``: admitted and not complete."""
    return _holding().filter(concurrency_group=name)


def slot_holder_counts(names: list[str]) -> dict[str, int]:
    """Group name → how many targets hold a slot of it, for each of ``names`` that has a
    holder (a group without one is left out). One query, grouped by group."""
    # Excluding "" again, though no name is "": it is the partial index's condition, so
    # the planner can use the index however long the list of names.
    holders = _holding().filter(concurrency_group__in=names).exclude(concurrency_group="")
    counts = holders.order_by().values("concurrency_group").annotate(n=Count("id"))
    return dict(counts.values_list("concurrency_group", "n"))


def _holding() -> QuerySet[BuildTarget]:
    return BuildTarget.objects.filter(status__in=UNFINISHED, date_admitted__isnull=False)


def queue(name) -> QuerySet[BuildTarget]:
    """Group ``name``'s queue (``name`` a group name or an expression giving one): its
    targets not admitted, pending, of building builds, in the order they were created."""
    return BuildTarget.objects.filter(
        concurrency_group=name,
        status=T.PENDING,
        date_admitted=None,
        build__status=Build.Status.BUILDING,
    ).order_by("id")


def places_ahead_of_outer() -> Subquery:
    """How many targets are ahead of the outer target in its group's queue (a subquery
    over ``BuildTarget``; NULL when none are), as ``places_ahead`` counts them."""
    # Excluding "" (the outer target is in a group) states the condition of the group
    # index, which the planner cannot infer from an outer reference: without it, each
    # outer target's count reads every pending target.
    ahead = queue(OuterRef("concurrency_group")).exclude(concurrency_group="")
    ahead = ahead.filter(pk__lt=OuterRef("pk")).order_by()
    return Subquery(ahead.values("concurrency_group").annotate(n=Count("id")).values("n"))


def release_slots(build: Build) -> None:
    """Announce to their groups' queues the targets of ``build`` (any run) completed since
    the last pass: each is marked ``slot_released`` conditionally, and the builds at the
    head of each group's queue are asked for an update after commit. Queued targets that
    completed (an aborted build's) are announced too: they no longer keep a place ahead."""
    if not uses_groups(build):
        return
    completed = BuildTarget.objects.filter(
        build_id=build.pk, slot_released=False, status__in=BuildTarget.COMPLETE
    ).exclude(concurrency_group="")
    groups = dict(completed.values_list("pk", "concurrency_group"))
    if not groups:
        return
    BuildTarget.objects.filter(pk__in=list(groups), slot_released=False).update(slot_released=True)
    for name in sorted(set(groups.values())):
        # Under the group's lock: a pass over another build that is queueing a target of
        # this group right now either committed first (its target is seen here and woken)
        # or counts the slots after this commit (and sees this target complete). Without
        # it, that target could be left unwoken until the repair. Taken after this pass's
        # target writes, yet no cycle: a group's lock holder writes only its own build's
        # targets, whose build lock this pass does not hold.
        lock_group(name)
        wake_queue(name)


def wake_queue(name: str) -> None:
    """Ask for an update (after commit) of the builds whose targets head group ``name``'s
    queue."""
    head = queue(name).values_list("build_id", flat=True)[:WAKE_AT_MOST]
    for build_id in dict.fromkeys(head):
        request_update(build_id)


def stalled_queues(cutoff) -> list[int]:
    """Builds whose queued target has waited since before ``cutoff`` at the head of a group
    with a free slot: a wake-up was lost (the repair task requests their update). Two
    queries, however many groups."""
    old = queue_heads_older_than(cutoff)
    if not old:
        return []
    held = slot_holder_counts(list(old))
    return [build_id for name, (build_id, limit) in old.items() if held.get(name, 0) < limit]


def queue_heads_older_than(cutoff) -> dict[str, tuple[int, int]]:
    """Group name → (build id, limit) of the head of each queue whose head was created
    before ``cutoff``."""
    heads: dict[str, tuple[int, int]] = {}
    stale = (
        BuildTarget.objects.filter(
            status=T.PENDING, date_admitted=None, build__status=Build.Status.BUILDING
        )
        .exclude(concurrency_group="")
        .filter(date_created__lt=cutoff)
        .order_by("id")
        .only("concurrency_group", "build_id", "config")
    )
    for target in stale[:500]:
        heads.setdefault(target.concurrency_group, (target.build_id, _limit(target)))
    return heads


def places_ahead(targets: list[BuildTarget]) -> dict[int, int]:
    """Target id → how many targets are ahead of it in its group's queue, for each of
    ``targets`` that is queued (pending, in a group, not admitted, as loaded). One query
    for them all (``places_ahead_of_outer``), none if none is queued."""
    queued = [
        target.pk
        for target in targets
        if target.status == T.PENDING and target.concurrency_group and not target.date_admitted
    ]
    if not queued:
        return {}
    counted = BuildTarget.objects.filter(pk__in=queued).annotate(
        ahead=Coalesce(places_ahead_of_outer(), 0)
    )
    return dict(counted.values_list("pk", "ahead"))
