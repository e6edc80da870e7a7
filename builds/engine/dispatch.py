"""Sending the engine's follow-up tasks by name, so the engine never imports the workers.

Routing (which queue) comes from ``CELERY_TASK_ROUTES``. Call these only after a commit
(``transaction.on_commit``): a task sent inside an open transaction can run before the rows
it needs are visible.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from celery import current_app
from django.conf import settings
from kombu.exceptions import ChannelError

from builds import locks

# The Redis transport's highest priority (its priority-0 lists are read first); ordinary
# tasks are routed at ``settings.ORDINARY_PRIORITY``.
RECLAIM_PRIORITY = 0

# The list a worker opened with ``taking_one_target``, or None: nobody takes a target here.
_taker: ContextVar[list[int] | None] = ContextVar("target_taker", default=None)


@contextmanager
def taking_one_target() -> Iterator[list[int]]:
    """Within the block, the first ``run_targets`` call with no countdown hands its first
    target to the caller (appended to the yielded list, at most one) instead of queueing a
    ``run_target`` for it; the others are queued as usual.

    For a worker that has just finished a target and ran the build's pass itself: it runs
    the next step at once, sparing the broker a round trip. The caller must run or queue the
    target it took; if it dies first, the target is pending with no queued mark, which the
    repair task finds as it finds a lost ``run_target``."""
    taken: list[int] = []
    token = _taker.set(taken)
    try:
        yield taken
    finally:
        _taker.reset(token)


def run_target(target_id: int, countdown: float = 0) -> None:
    """Queue ``workers.tasks.run_target`` for target ``target_id``, after ``countdown`` s,
    with its queued mark (``builds.locks``) set first, so the repair task knows it is
    queued. Broker and Redis errors propagate, the mark cleared if Redis allows."""
    run_targets([target_id], countdown)


def run_targets(target_ids: list[int], countdown: float = 0, *, reclaim: bool = False) -> None:
    """``run_target`` for each of ``target_ids``, with one Redis round trip for the marks
    (less the one a worker takes, see ``taking_one_target``). ``reclaim=True`` (the repair
    task's work, shown missing) sends them ahead of every ordinary task: a worker takes them
    as soon as one of its slots is free; a reclaim is never handed to the caller."""
    taken = _taker.get()
    if target_ids and taken is not None and not taken and not countdown and not reclaim:
        taken.append(target_ids[0])
        target_ids = target_ids[1:]
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
