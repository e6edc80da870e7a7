"""Celery tasks of the forges app: sending the outbox's rows (commit statuses and
notifications), and the sweep that finds those whose task was lost. Thin: the work is in
``forges.outbox``."""

import logging

from celery import shared_task

from builds.engine import INFRASTRUCTURE_ERRORS
from forges import dispatch, outbox
from harbor import logformat

logger = logging.getLogger(__name__)


# acks_late with reject_on_worker_lost: a task whose worker died is delivered again, and
# the row's claim (conditional, with a lease) makes a duplicate harmless.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=INFRASTRUCTURE_ERRORS,
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=None,
)
def deliver(delivery_id: int) -> None:
    """Send outbox row ``delivery_id`` (outside every transaction); schedule its retry, and
    queue the row of its stream that waited behind it."""
    with logformat.bind(delivery_id=delivery_id):
        retry_in = outbox.deliver(delivery_id)
    if retry_in is not None:
        dispatch.deliver(delivery_id, countdown=retry_in)
    waiting = outbox.next_waiting(delivery_id)
    if waiting is not None:
        dispatch.deliver(waiting)


@shared_task(acks_late=True)
def sweep_deliveries() -> None:
    """Queue a ``deliver`` for each outbox row whose task is overdue (run by Celery beat,
    see ``outbox.due_deliveries``)."""
    for delivery_id in outbox.due_deliveries():
        logger.warning("outbound delivery %s has no task on the way; queueing one", delivery_id)
        dispatch.deliver(delivery_id)
