"""Every status transition of builds, build targets and buildables, written once as data.

A transition is a conditional update, ``UPDATE … WHERE id = … AND status IN (<allowed
predecessors>)``: one row changed means this call made the move, zero means it already
happened or is not allowed, so a replayed pass or a duplicate task changes nothing
(docs/design.md §2.5). Each move that happens writes one ``StatusEvent`` for the timeline.
The updates are the ORM's ``QuerySet.update``, whose return value is that row count.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.dispatch import Signal
from django.utils import timezone

from builds import metrics
from builds.models import Build, Buildable, BuildMessage, BuildTarget, StatusEvent

B = Build.Status
T = BuildTarget.Status
BB = Buildable.Status

# Sent with ``build`` (its status now) inside the transaction of each change of what a
# build shows outside: each of its moves (with ``previous``, the status it left; the first,
# pending to building, is made in the transaction that creates it, so it also announces
# the build), a target starting to wait or failing (with ``target``), a target announced
# stuck (with ``target`` and ``event``). Every send holds the build's row lock (``FOR NO KEY
# UPDATE``, or in its start the new row no one else sees yet) until the commit: a move of
# the build updates its row, and each sender that moves or announces a target locks the
# build's row first (a pass, a worker's finish into waiting or failed, a claim that gives
# up, the stuck announcer). So the rows receivers write for one build are written, and
# numbered, in the order of its changes, and the ``build`` a receiver gets stays current
# until then.
# A receiver's writes commit or roll back with the change, and one that raises undoes it:
# the forges app writes its outbox of commit statuses and notifications here, and the
# engine knows nothing of forges.
build_changed = Signal()

BUILD_ALLOWED_FROM: dict[str, frozenset[str]] = {
    B.BUILDING: frozenset({B.PENDING, B.PAUSED}),
    B.PAUSED: frozenset({B.PENDING, B.BUILDING}),
    B.PASSED: frozenset({B.BUILDING}),
    B.FAILED: frozenset({B.BUILDING}),
    B.DEADLOCKED: frozenset({B.BUILDING}),
    B.ABORTED: frozenset({B.PENDING, B.BUILDING, B.PAUSED}),
    B.ERROR: frozenset({B.INACTIVE, B.PENDING, B.BUILDING, B.PAUSED}),
}
# A restart may start any build again, complete or not (docs/harbormaster.md §3); it is guarded
# instead by consuming its message conditionally, so it is applied at most once.
RESTARTABLE_FROM = frozenset(set(B) - {B.INACTIVE})

TARGET_ALLOWED_FROM: dict[str, frozenset[str]] = {
    # building → building is a new claim after the previous claim's lease expired.
    T.BUILDING: frozenset({T.PENDING, T.BUILDING}),
    T.WAITING: frozenset({T.BUILDING}),
    T.PASSED: frozenset({T.BUILDING, T.WAITING}),
    T.FAILED: frozenset({T.BUILDING, T.WAITING}),
    T.ABORTED: frozenset({T.PENDING, T.BUILDING, T.WAITING}),
}

BUILDABLE_ALLOWED_FROM: dict[str, frozenset[str]] = {
    BB.BUILDING: frozenset({BB.PREPARING, BB.PASSED, BB.FAILED}),
    BB.PASSED: frozenset({BB.BUILDING, BB.FAILED}),
    BB.FAILED: frozenset({BB.BUILDING, BB.PASSED}),
}


def move_build(
    build: Build,
    to: str,
    cause: str,
    *,
    allowed_from: frozenset[str] | None = None,
    message: BuildMessage | None = None,
    detail: str = "",
    **fields,
) -> bool:
    """Move ``build`` to status ``to`` if it is in an allowed predecessor status.

    ``fields`` are written in the same UPDATE (e.g. ``generation``). Returns True and
    records a StatusEvent if the row changed, then sends ``build_changed``; False
    (and nothing written) otherwise. The instance is updated to match the row.
    """
    allowed = allowed_from if allowed_from is not None else BUILD_ALLOWED_FROM[to]
    previous = build.status
    now = timezone.now()
    changed = Build.objects.filter(pk=build.pk, status__in=allowed).update(
        status=to, date_modified=now, **fields
    )
    if not changed:
        return False
    record_event(
        build=build, from_status=build.status, to=to, cause=cause, message=message, detail=detail
    )
    build.status = to
    for name, value in fields.items():
        setattr(build, name, value)
    build_changed.send(Build, build=build, previous=previous)
    if to in Build.COMPLETE:
        metrics.build_completed(build.plan_id, to)
    return True


def move_target(
    target: BuildTarget,
    to: str,
    cause: str,
    *,
    on_attempt: int | None = None,
    message: BuildMessage | None = None,
    detail: str = "",
    record: bool = True,
    **fields,
) -> bool:
    """Move ``target`` to ``to`` if it is in an allowed predecessor status (and, when
    ``on_attempt`` is given, still on that claim: a worker whose lease was taken over cannot
    finish the target). ``record=False`` skips the timeline event (a yielded step resuming is
    not news). Sets ``date_completed`` on reaching a complete status. Returns True
    if this call made the move. A move to ``failed`` sends ``build_changed`` with
    ``target.build``: the caller holds that build's row lock (see ``build_changed``)."""
    condition = {"pk": target.pk, "status__in": TARGET_ALLOWED_FROM[to]}
    if on_attempt is not None:
        condition["attempt"] = on_attempt
    if to in BuildTarget.COMPLETE:
        fields.setdefault("date_completed", timezone.now())
        fields.setdefault("lease_expires", None)
    if not BuildTarget.objects.filter(**condition).update(status=to, **fields):
        return False
    if record:
        record_event(
            build_id=target.build_id,
            target=target,
            from_status=target.status,
            to=to,
            cause=cause,
            message=message,
            detail=detail,
        )
    target.status = to
    for name, value in fields.items():
        setattr(target, name, value)
    if to == T.FAILED:
        build_changed.send(Build, build=target.build, target=target)
    if to in BuildTarget.COMPLETE:
        metrics.target_completed(target.step_type, to)
    return True


def supersede_target(target: BuildTarget, by: str) -> bool:
    """Mark the complete ``target`` as replaced by a new attempt of its step (``by`` is a
    ``BuildTarget.Supersession``: a retry or a rerun), if it is still the current attempt.
    Its status is kept, as the record of how that attempt ended; the engine stops reading
    it, so the step is runnable again and the pass creates its next attempt. Returns True
    if this call made the change: a replayed pass finds it done and adds no attempt."""
    changed = BuildTarget.objects.filter(
        pk=target.pk, superseded_by="", status__in=BuildTarget.COMPLETE
    ).update(superseded_by=by)
    if changed:
        target.superseded_by = by
    return bool(changed)


def move_buildable(buildable: Buildable, to: str, cause: str, detail: str = "") -> bool:
    """Move ``buildable`` to ``to`` if allowed; True if this call made the move."""
    changed = Buildable.objects.filter(
        pk=buildable.pk, status__in=BUILDABLE_ALLOWED_FROM[to]
    ).update(status=to, date_modified=timezone.now())
    if not changed:
        return False
    record_event(
        buildable=buildable, from_status=buildable.status, to=to, cause=cause, detail=detail
    )
    buildable.status = to
    return True


@contextmanager
def events_in_one_insert() -> Iterator[None]:
    """Hold back the StatusEvents of the moves made inside, and insert them all at the end in
    one statement (in the order of the moves). Use it inside a transaction: the events are
    written with the moves or, if the block raises, not at all."""
    pending: list[StatusEvent] = []
    token = _held_events.set(pending)
    try:
        yield
    finally:
        _held_events.reset(token)
    if pending:
        StatusEvent.objects.bulk_create(pending)


# The events held back by an enclosing ``events_in_one_insert``, or None to insert at once.
_held_events: ContextVar[list[StatusEvent] | None] = ContextVar("held_events", default=None)


def record_event(
    *,
    from_status: str,
    to: str,
    cause: str,
    message=None,
    actor=None,
    detail: str = "",
    **subject,
) -> None:
    """Write the timeline's StatusEvent for a move of ``subject`` (``build=``, ``build_id=``
    and ``target=``, or ``buildable=``) from ``from_status`` to ``to``; held back for one
    insert inside ``events_in_one_insert``. The actor is ``message``'s author, else
    ``actor`` (a User or None). ``detail`` is cut to 500 characters."""
    event = StatusEvent(
        from_status=from_status or "",
        to_status=to,
        cause=cause,
        message=message,
        actor_id=message.author_id if message else getattr(actor, "pk", None),
        detail=detail[:500],
        **subject,
    )
    held = _held_events.get()
    if held is None:
        event.save()
    else:
        held.append(event)
