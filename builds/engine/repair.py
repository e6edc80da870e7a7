"""Finding work whose follow-up was lost (docs/design.md §6.5).

A follow-up task can be lost when a worker dies (with the Redis broker an unacknowledged
task returns only after the visibility timeout, an hour by default) or when Redis loses its
data. The repair looks for exactly what such a loss leaves behind, older than ``bound``
seconds, and hands it back to the normal path; it never writes a status itself.
"""

import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from builds import locks
from builds.engine import concurrency, dispatch
from builds.engine.passes import classify_steps
from builds.models import Build, BuildMessage, BuildTarget

T = BuildTarget.Status


@dataclass
class LostWork:
    """Builds needing an ``update_build`` and targets needing a ``run_target``."""

    build_ids: list[int] = field(default_factory=list)
    target_ids: list[int] = field(default_factory=list)


def find_lost_work(bound_seconds: float, limit: int = 500) -> LostWork:
    """Return builds and targets stuck for longer than ``bound_seconds``:

    - pending builds never started, and building or paused builds with an unconsumed
      command, or with a waiting current-generation target that has an unconsumed
      pass/fail message;
    - building builds whose update after a target's completion was lost: no target
      underway, a target completed before the cutoff, and a pass would act (a step failed,
      all steps complete, or a step is runnable or can never run);
    - building builds whose target has waited past the cutoff at the head of a concurrency
      group's queue while the group has a free slot (its wake-up was lost);
    - pending targets never claimed (but those queued for a concurrency group), and
      building targets whose lease has expired, whose ``run_target`` is not on the way
      (``not_queued``).
    """
    cutoff = timezone.now() - timedelta(seconds=bound_seconds)
    stale_verdict = BuildMessage.objects.filter(
        target_id=OuterRef("pk"),
        is_consumed=False,
        type__in=BuildMessage.VERDICTS,
        date_created__lt=cutoff,
    )
    waiting_with_verdict = BuildTarget.objects.filter(
        build_id=OuterRef("pk"), status=T.WAITING, generation=OuterRef("generation")
    ).filter(Exists(stale_verdict))
    stale_command = BuildMessage.objects.filter(
        build_id=OuterRef("pk"),
        is_consumed=False,
        type__in=BuildMessage.COMMANDS,
        date_created__lt=cutoff,
    )
    builds = Build.objects.filter(
        Q(status=Build.Status.PENDING, date_created__lt=cutoff)
        | Q(status=Build.Status.BUILDING) & Exists(waiting_with_verdict)
        | ~Q(status=Build.Status.INACTIVE) & Exists(stale_command)
    ).values_list("pk", flat=True)[:limit]
    targets = (
        BuildTarget.objects.filter(
            Q(status=T.PENDING, date_created__lt=cutoff)
            | Q(status=T.BUILDING, lease_expires__lt=timezone.now())
        )
        # Queued for a concurrency group: not lost, waiting for a slot (below).
        .exclude(Q(status=T.PENDING, date_admitted=None) & ~Q(concurrency_group=""))
        .values_list("pk", flat=True)[:limit]
    )
    # Each build once, in the order found: a build may head several groups' queues.
    build_ids = dict.fromkeys(
        [*builds, *_stalled_builds(cutoff, limit), *concurrency.stalled_queues(cutoff)]
    )
    return LostWork(list(build_ids)[:limit], not_queued(list(targets), bound_seconds))


def not_queued(target_ids: list[int], bound_seconds: float) -> list[int]:
    """Those of ``target_ids`` (targets that need a ``run_target``) with none on the way:
    no queued mark, or a mark overdue by ``bound_seconds`` while the targets queue is
    empty, so that nothing waiting in it can be that task. A target whose task is waiting
    its turn behind a backlog is left alone: re-queueing it would only lengthen the
    backlog. Redis and broker errors propagate."""
    due = locks.targets_queued_due(target_ids)
    now = time.time()
    overdue = {t for t, when in due.items() if when + bound_seconds < now}
    queue_idle = bool(overdue) and dispatch.queued_task_count("targets") == 0
    return [t for t in target_ids if t not in due or (queue_idle and t in overdue)]


def _stalled_builds(cutoff, limit: int) -> list[int]:
    current = {
        "build_id": OuterRef("pk"),
        "generation": OuterRef("generation"),
        "superseded_by": "",
    }
    underway = BuildTarget.objects.filter(**current, status__in=BuildTarget.UNDERWAY)
    settled = BuildTarget.objects.filter(
        **current, status__in=BuildTarget.COMPLETE, date_completed__lt=cutoff
    )
    candidates = (
        Build.objects.filter(status=Build.Status.BUILDING)
        .filter(Exists(settled))
        .exclude(Exists(underway))
        .only("pk", "generation", "plan_snapshot")[:limit]
    )
    return [build.pk for build in candidates if _a_pass_would_act(build)]


def _a_pass_would_act(build: Build) -> bool:
    targets = {
        t.step_key: t for t in build.targets.filter(generation=build.generation, superseded_by="")
    }
    status = classify_steps(build.plan_snapshot, targets)
    return bool(
        status.failed
        or len(status.complete) == len(build.plan_snapshot)
        or status.runnable
        or not (status.waiting or status.underway)
    )
