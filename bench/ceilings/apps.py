"""The ceiling app's configuration (installed by ``bench.settings`` only)."""

from django.apps import AppConfig


class CeilingsConfig(AppConfig):
    """The benchmark's reference endpoint and tasks."""

    name = "bench.ceilings"
    label = "ceilings"
    default_auto_field = "django.db.models.BigAutoField"
