from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users (with Harbormaster-style PHIDs) and their API tokens."""

    name = "accounts"
