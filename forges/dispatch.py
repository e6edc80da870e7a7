"""Queueing the delivery of an outbox row (``forges.tasks.deliver``) by name, so the
modules that write and send the rows never import the tasks. Routing comes from
``CELERY_TASK_ROUTES``. Call it only after a commit."""

from celery import current_app


def deliver(delivery_id: int, countdown: float = 0) -> None:
    """Queue the delivery of outbox row ``delivery_id``, after ``countdown`` seconds.
    Broker errors propagate."""
    current_app.send_task("forges.tasks.deliver", args=(delivery_id,), countdown=countdown or None)
