"""Queueing a status delivery (``forges.tasks.deliver_status``) by name, so the modules
that write and send statuses never import the tasks. Routing comes from
``CELERY_TASK_ROUTES``. Call it only after a commit."""

from celery import current_app


def deliver_status(delivery_id: int, countdown: float = 0) -> None:
    """Queue the delivery of status row ``delivery_id``, after ``countdown`` seconds.
    Broker errors propagate."""
    current_app.send_task(
        "forges.tasks.deliver_status", args=(delivery_id,), countdown=countdown or None
    )
