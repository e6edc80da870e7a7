from django.apps import AppConfig


class BuildsConfig(AppConfig):
    """The domain: plans, buildables, builds, targets, messages, and the build engine."""

    name = "builds"
