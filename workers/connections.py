"""Database connections in worker processes: dropped when broken or too old, after every
task, as Django drops a web request's.

Celery's Django fix-up closes a worker's connections around every task unless
``CELERY_DB_REUSE_MAX`` is set. Harbor sets it, because opening a connection per task costs
more than an engine pass; the fix-up then closes them only every 2 × that many tasks and
never looks at them in between. A connection broken by a database restart stays broken:
a statement outside a transaction fails and leaves it closed on the client side, and every
later ``transaction.atomic()`` fails on entry (``InterfaceError: connection already
closed``) before it could drop it, so the worker retries its tasks for ever.
"""

from celery.app.task import Task
from django.db import close_old_connections


def drop_unusable_connections(sender: Task | None = None, **kwargs) -> None:
    """``task_postrun`` handler: close each database connection that saw an error and no
    longer answers, that is older than ``CONN_MAX_AGE``, or whose autocommit was left off;
    the next task opens a fresh one. Healthy connections are kept. Eager tasks (run inside
    the caller, e.g. a test's transaction) are left alone, as Celery's fix-up does."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    close_old_connections()
