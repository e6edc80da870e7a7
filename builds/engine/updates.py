"""Running engine passes: one pass with its error handling, passes under the build's Redis
lock in a worker's task, and the pass of the process that committed the work it reads.

A pass is safe to run anywhere, any number of times (docs/design.md §3.3): the build row
lock serialises passes, and every write in one is conditional. The Redis lock and dirty
mark (``builds.locks``) only keep one process running a build's passes while the others
hand their update to it; a pass that takes the row ``NOWAIT`` waits for no one and needs
neither (docs/design.md §3.5).
"""

import logging
import time
from collections.abc import Callable
from functools import partial

import kombu.exceptions
import redis
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, transaction

from builds import locks, metrics
from builds.engine import dispatch
from builds.engine.passes import PassResult, run_pass
from builds.engine.rows import BuildLocked
from builds.engine.transitions import move_build
from builds.models import Build, StatusEvent

logger = logging.getLogger(__name__)

# What an unreachable or restarting database, Redis or broker raises: the web answers 503
# (``messages_api/outage.py``).
OUTAGE_ERRORS = (
    OperationalError,
    InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
    kombu.exceptions.OperationalError,
)
# Failures of the machinery rather than of Harbor's logic: the pass is rolled back (or, for
# the broker's errors when queueing targets after the commit, was committed and is safe to
# run again) and the task retries. An IntegrityError can only come from a duplicate insert,
# which a retried pass will not repeat; none of these may set the build to ``error``.
INFRASTRUCTURE_ERRORS = (*OUTAGE_ERRORS, IntegrityError)


def update_build(
    build_id: int, before: Callable[[Build], object] | None = None, wait: bool = True
) -> PassResult | None:
    """Run one engine pass over build ``build_id`` (see ``builds.engine.passes``; ``before``
    and ``wait`` as ``run_pass`` takes them).

    Returns the pass's result, or None if the build no longer exists. Infrastructure errors,
    and ``BuildLocked`` (``wait=False``), propagate unchanged for the caller to retry or
    hand on. Any other exception is a bug in Harbor: the build is set to ``error``
    (Harbormaster's ``continueBuild``, docs/harbormaster.md §1.6) and the exception
    re-raised.
    """
    started = time.monotonic()
    try:
        result = run_pass(build_id, before, wait)
    except Build.DoesNotExist:
        return None
    except (*INFRASTRUCTURE_ERRORS, BuildLocked):
        raise
    except Exception as exc:
        logger.exception("engine pass over build %s failed", build_id, extra={"build_id": build_id})
        _mark_error(build_id, exc)
        raise
    metrics.engine_pass_finished(time.monotonic() - started)
    return result


def _mark_error(build_id: int, exc: Exception) -> None:
    try:
        with transaction.atomic():
            build = Build.objects.select_for_update(no_key=True).get(pk=build_id)
            move_build(
                build,
                Build.Status.ERROR,
                StatusEvent.Cause.ENGINE,
                detail=f"{type(exc).__name__}: {exc}",
            )
    except DatabaseError:
        logger.exception("could not mark build %s as error", build_id, extra={"build_id": build_id})


def run_passes(build_id: int, wait: bool = True, **first) -> bool:
    """Run passes over build ``build_id`` under its Redis lock until no update is left for
    it, or mark it dirty for the lock's holder (``locks.run_exclusively``, whose
    ``first_pass``, ``if_busy`` and ``clear_queued`` ``first`` passes on; a busy lock's
    fallback update is queued). ``wait`` as ``update_build`` takes it. Returns True if this
    call ran the passes. Errors as ``update_build`` and ``run_exclusively`` raise them."""
    return locks.run_exclusively(
        build_id,
        partial(update_build, wait=wait),
        schedule_update=lambda seconds: dispatch.update_build(build_id, countdown=seconds),
        **first,
    )


def run_own_passes(
    build_id: int, before: Callable[[Build], object], if_busy: Callable[[], object]
) -> None:
    """Run build ``build_id``'s pass in this process carrying a write of its own:
    ``before(build)``, made right after the pass locks the build (a finishing worker's
    finish, ``targets.finish_in_pass``), so one transaction makes the write and the pass that
    reads it.

    With the build's row free, that is one pass taking the row ``NOWAIT``, without the Redis
    lock (as a sender's, ``update_after_commit``). With the row held, through
    ``run_passes``: under the Redis lock (waiting for the row), or, with the lock busy,
    ``if_busy()`` must commit the write alone and the lock's holder passes again. Errors as
    ``update_build`` and ``run_passes`` raise them; the write is then not made."""
    if _passed_without_the_redis_lock(build_id, before):
        return
    run_passes(
        build_id,
        first_pass=lambda first_id: update_build(first_id, before),
        if_busy=if_busy,
    )


def _passed_without_the_redis_lock(
    build_id: int, before: Callable[[Build], object] | None = None
) -> bool:
    """One pass over build ``build_id`` (with ``before``, as ``update_build`` takes it) if
    its row is free, without the Redis lock; False, with nothing written, if another
    transaction holds the row. Errors as ``update_build`` raises them."""
    # Why no Redis lock: it only keeps processes from queueing on a build's row, and a pass
    # taking the row NOWAIT queues behind no one. A holder of the Redis lock between two
    # passes loses nothing: a pass reads everything committed before it starts, and the
    # holder's next pass finds this one's work done.
    try:
        update_build(build_id, before, wait=False)
    except BuildLocked:
        return False  # the pass rolled back before ``before`` ran
    return True


def update_after_commit(build_id: int) -> None:
    """Run build ``build_id``'s passes in this process once the current transaction commits
    (at once when there is none), or leave them to the process passing it.

    For work whose sender waits for no more than its storage (a verdict, a command): the
    pass then decides before the sender is answered, without a broker round trip and a
    worker's turn in between. The sender never waits for another transaction's pass. With
    the build's row free, this process passes at once, without the Redis lock: the row lock
    serialises passes, and a pass that starts after the commit reads the work. With the row
    held by another transaction (a pass, a command being received, a worker's finish), the
    update goes through the Redis lock (``run_passes``): the lock's holder is asked for
    another pass, or, with the lock free but the row still held, an update is queued (one
    for all the senders so refused before it starts), which a worker waits for. If the
    pass cannot run (the database, Redis or the broker fails, or the pass raised a bug and
    set the build to ``error``), nothing is raised: the work has committed and the sender
    must be answered as such; an update is queued instead (``dispatch.request_update``),
    and if that fails too, the repair task finds the build (``builds.engine.repair``)."""
    transaction.on_commit(lambda: _update_or_queue(build_id))


def _update_or_queue(build_id: int) -> None:
    try:
        _pass_or_hand_on(build_id)
        return
    except BuildLocked:
        pass
    except Exception:
        logger.warning(
            "engine pass over build %s after a commit failed; queueing an update",
            build_id,
            exc_info=True,
            extra={"build_id": build_id},
        )
    try:
        dispatch.request_update(build_id)
    except Exception:
        logger.exception(
            "could not queue an update for build %s; the repair task will find it",
            build_id,
            extra={"build_id": build_id},
        )


def _pass_or_hand_on(build_id: int) -> None:
    """One pass over build ``build_id`` if its row is free, else its update handed to the
    Redis lock's holder (``run_passes``). Raises ``BuildLocked`` if the row is held and the
    Redis lock is free, and what ``update_build`` raises."""
    if _passed_without_the_redis_lock(build_id):
        return
    # Another transaction holds the row (a pass, or work like this on its way), and a pass
    # may have read before this work committed: the Redis lock's holder is marked dirty and
    # passes again, or this process takes the lock and tries the row once more. The queued
    # mark is kept: an update queued and not started reads this work, so senders colliding
    # on one build queue one update between them, not one each.
    run_passes(build_id, wait=False, clear_queued=False)
