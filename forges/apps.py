from django.apps import AppConfig


class ForgesConfig(AppConfig):
    name = "forges"
    verbose_name = "Forges"

    def ready(self) -> None:
        from builds.engine.transitions import build_changed
        from forges.notifications import record_notifications
        from forges.statuses import record_status

        # The engine sends the signal inside each move's transaction; the outbox rows of
        # the commit status and the notifications are written there, so they commit (or
        # roll back) with the move.
        build_changed.connect(record_status, dispatch_uid="forges.record_status")
        build_changed.connect(record_notifications, dispatch_uid="forges.record_notifications")
