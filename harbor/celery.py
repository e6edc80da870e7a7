"""The Celery application: created here, configured from Django settings, tasks autodiscovered;
its log lines in Harbor's format."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from workers.heartbeat import HeartbeatStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harbor.settings")

app = Celery("harbor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each worker writes a heartbeat that `manage.py workerhealth` reads.
app.steps["worker"].add(HeartbeatStep)


@after_setup_logger.connect
@after_setup_task_logger.connect
def use_harbor_log_format(logger, **kwargs) -> None:
    """The worker has set up its own log handlers (replacing Django's ``LOGGING``): give
    them Harbor's JSON format when ``HARBOR_LOG_FORMAT=json``."""
    from django.conf import settings  # noqa: PLC0415  (configured by the time a worker logs)

    from harbor import logformat  # noqa: PLC0415

    if settings.HARBOR_LOG_FORMAT == "json":
        logformat.use_json(logger)
