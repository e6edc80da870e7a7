from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """Celery tasks and the build step implementations they run."""

    name = "workers"
