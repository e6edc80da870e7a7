from celery import signals
from django.apps import AppConfig

from workers.connections import drop_unusable_connections


class WorkersConfig(AppConfig):
    """Celery tasks and the build step implementations they run."""

    name = "workers"

    def ready(self) -> None:
        signals.task_postrun.connect(drop_unusable_connections, weak=False)
