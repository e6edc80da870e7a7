"""Sending the engine's follow-up tasks by name, so the engine never imports the workers.

Routing (which queue) comes from ``CELERY_TASK_ROUTES``. Call these only after a commit
(``transaction.on_commit``): a task sent inside an open transaction can run before the rows
it needs are visible.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from celery import current_app
from django.conf import settings
from django.db import transaction
from kombu.exceptions import ChannelError

from builds import locks

# The Redis transport's highest priority (its priority-0 lists are read first); ordinary
# tasks are routed at ``settings.ORDINARY_PRIORITY``.
RECLAIM_PRIORITY = 0


@dataclass
class _Taker:
    """A worker waiting for its next target: the claim handed to it (once the pass that
    made it commits), and whether a pass has promised one already."""

    claims: list = field(default_factory=list)
    promised: bool = False


# The worker's ``_Taker`` inside ``taking_one_target``, or None: nobody takes a target here.
_taker: ContextVar[_Taker | None] = ContextVar("target_taker", default=None)


@contextmanager
def taking_one_target() -> Iterator[list]:
    """Within the block, the first engine pass that creates a target free to run claims it
    for the caller (``wants_a_target``, ``hand_over``) instead of queueing a ``run_target``
    for it; the ``Claim`` is appended to the yielded list when that pass commits (at most
    one). Every other target is queued as usual.

    For a worker that has just finished a target and runs the build's pass itself: it runs
    the next step at once, sparing the broker a round trip and the target a claim of its
    own. The caller must run the claimed target; if it dies first, the target is
    ``building`` under a lease nobody renews, which the repair task finds when it lapses,
    as it finds any worker lost mid-step."""
    taker = _Taker()
    token = _taker.set(taker)
    try:
        yield taker.claims
    finally:
        _taker.reset(token)


def wants_a_target() -> bool:
    """Whether the process running this pass waits for a target and none was promised yet."""
    taker = _taker.get()
    return taker is not None and not taker.promised


def hand_over(claim) -> None:
    """Give ``claim`` (a ``Claim`` made in the current transaction) to the waiting worker
    once the transaction commits. A rollback undoes the claim, and the worker never sees
    it; no later pass in the block hands over another either way."""
    taker = _taker.get()
    taker.promised = True
    transaction.on_commit(lambda: taker.claims.append(claim))


def run_target(target_id: int, countdown: float = 0) -> None:
    """Queue ``workers.tasks.run_target`` for target ``target_id``, after ``countdown`` s,
    with its queued mark (``builds.locks``) set first, so the repair task knows it is
    queued. Broker and Redis errors propagate, the mark cleared if Redis allows."""
    run_targets([target_id], countdown)


def run_targets(target_ids: list[int], countdown: float = 0, *, reclaim: bool = False) -> None:
    """``run_target`` for each of ``target_ids``, with one Redis round trip for the marks.
    ``reclaim=True`` (the repair task's work, shown missing) sends them ahead of every
    ordinary task: a worker takes them as soon as one of its slots is free."""
    if not target_ids:
        return
    priority = {"priority": RECLAIM_PRIORITY} if reclaim else {}
    locks.mark_targets_queued(target_ids, countdown)
    for index, target_id in enumerate(target_ids):
        try:
            current_app.send_task(
                "workers.tasks.run_target",
                args=(target_id,),
                countdown=countdown or None,
                **priority,
            )
        except BaseException:
            locks.clear_target_queued(target_ids[index:])
            raise


def queued_task_count(queue: str) -> int:
    """Tasks waiting in queue ``<HARBOR_QUEUE_PREFIX>.<queue>`` that no worker has taken
    (a queue the broker does not know is empty). Broker errors propagate."""
    name = f"{settings.HARBOR_QUEUE_PREFIX}.{queue}"
    with current_app.connection_for_read() as connection:
        try:
            return connection.default_channel.queue_declare(name, passive=True).message_count
        except ChannelError:
            return 0


def request_update(build_id: int) -> None:
    """Queue ``workers.tasks.update_build`` for build ``build_id`` unless one is already
    queued and not yet started (``builds.locks.claim_update_request``): that one's pass
    will read what has committed by now."""
    if not locks.claim_update_request(build_id):
        return
    try:
        update_build(build_id)
    except BaseException:
        locks.clear_update_request(build_id)
        raise


def update_build(build_id: int, countdown: float = 0) -> None:
    """Queue ``workers.tasks.update_build`` for build ``build_id``, after ``countdown`` s."""
    current_app.send_task(
        "workers.tasks.update_build", args=(build_id,), countdown=countdown or None
    )


def call_cancel_hook(target_id: int) -> None:
    """Queue ``workers.tasks.call_cancel_hook`` for an aborted target with ``on_abort``."""
    current_app.send_task("workers.tasks.call_cancel_hook", args=(target_id,))
