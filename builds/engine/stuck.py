"""Targets stuck past their step's ``stuck_after`` (Beyond Harbormaster, docs/design.md §6.6).

A target is stuck when it has been pending, building or waiting (its newest status event)
longer than its step's ``stuck_after`` seconds. The pages flag it as they read it; the
periodic task ``workers.tasks.announce_stuck_targets`` announces each stuck target once, as
a ``target.stuck`` notification (forges.notifications), by marking ``stuck_notified_at``
with a conditional update in the transaction that writes the notification: a second
announcer, or a replayed task, finds it marked and writes nothing.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import (
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Now
from django.utils import timezone

from builds.engine.transitions import build_changed
from builds.models import Build, BuildTarget, StatusEvent

STUCK_EVENT = "target.stuck"
STUCK_STATUSES = (*BuildTarget.UNDERWAY, BuildTarget.Status.WAITING)


def past_stuck_after(targets: QuerySet) -> QuerySet:
    """``targets`` narrowed to the current attempts (not superseded) in a status that can
    be stuck and in it for longer than their step's ``stuck_after`` seconds."""
    since = StatusEvent.objects.filter(target_id=OuterRef("pk")).order_by("-id").values("at")
    limit = ExpressionWrapper(
        Cast(KT("config__stuck_after"), FloatField()) * Value(timedelta(seconds=1)),
        output_field=DurationField(),
    )
    return (
        targets.filter(status__in=STUCK_STATUSES, superseded_by="", config__has_key="stuck_after")
        .annotate(since=Subquery(since[:1]))
        .filter(since__lt=Now() - limit)
    )


def unannounced_stuck_targets(limit: int = 500) -> list[int]:
    """Ids of stuck targets of their build's current run not yet announced, oldest first
    (at most ``limit``)."""
    targets = BuildTarget.objects.filter(stuck_notified_at=None, generation=F("build__generation"))
    return list(past_stuck_after(targets).order_by("pk").values_list("pk", flat=True)[:limit])


def announce_stuck(target_id: int) -> bool:
    """Mark target ``target_id`` announced and send ``build_changed`` with ``event``
    ``target.stuck`` in one transaction, under its build's row lock (receivers write their
    outbox rows in it). Returns False, writing nothing, if the target is unknown, was
    announced already or is no longer stuck."""
    build_id = BuildTarget.objects.filter(pk=target_id).values_list("build_id", flat=True).first()
    if build_id is None:
        return False
    with transaction.atomic():
        # ``build_changed`` is sent under the build's row lock, as every send is, so the
        # notification is numbered among the build's others in the order of its changes: a
        # pass that settles the target either committed first (the target is no longer
        # stuck: nothing is sent) or runs after, and its rows come after this one. Lock
        # order build, then target: the conditional update below locks the target.
        build = Build.objects.select_for_update(no_key=True).filter(pk=build_id).first()
        if build is None:
            return False
        still_stuck = past_stuck_after(BuildTarget.objects.filter(pk=target_id))
        # Conditional on the mark being unset: a second announcer, blocked on the build's
        # row lock until the first commits, then finds it set.
        marked = BuildTarget.objects.filter(
            pk__in=still_stuck.values("pk"), stuck_notified_at=None
        ).update(stuck_notified_at=timezone.now())
        if not marked:
            return False
        target = BuildTarget.objects.get(pk=target_id)
        target.build = build
        build_changed.send(Build, build=build, target=target, event=STUCK_EVENT)
    return True
