from django.apps import AppConfig


class MessagesApiConfig(AppConfig):
    """The REST API (and later the Conduit-compatible one) through which systems talk to Harbor."""

    name = "messages_api"
