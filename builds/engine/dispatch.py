"""Sending the engine's follow-up tasks by name, so the engine never imports the workers.

Routing (which queue) comes from ``CELERY_TASK_ROUTES``. Call these only after a commit
(``transaction.on_commit``): a task sent inside an open transaction can run before the rows
it needs are visible.
"""

from celery import current_app
from django.conf import settings
from kombu.exceptions import ChannelError

from builds import locks


def run_target(target_id: int, countdown: float = 0) -> None:
    """Queue ``workers.tasks.run_target`` for target ``target_id``, after ``countdown`` s,
    with its queued mark (``builds.locks``) set first, so the repair task knows it is
    queued. Broker and Redis errors propagate, the mark cleared if Redis allows."""
    run_targets([target_id], countdown)


def run_targets(target_ids: list[int], countdown: float = 0) -> None:
    """``run_target`` for each of ``target_ids``, with one Redis round trip for the marks."""
    if not target_ids:
        return
    locks.mark_targets_queued(target_ids, countdown)
    for index, target_id in enumerate(target_ids):
        try:
            current_app.send_task(
                "workers.tasks.run_target", args=(target_id,), countdown=countdown or None
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
