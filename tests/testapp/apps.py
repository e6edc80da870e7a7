from django.apps import AppConfig


class TestAppConfig(AppConfig):
    """Test-only helpers installed by tests/settings.py (never by Harbor's own settings)."""

    name = "tests.testapp"
    label = "harbor_tests"
