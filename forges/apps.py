from django.apps import AppConfig


class ForgesConfig(AppConfig):
    name = "forges"
    verbose_name = "Forges"

    def ready(self) -> None:
        from builds.engine.transitions import build_changed
        from forges.statuses import record_status

        # The engine sends the signal inside each move's transaction; the outbox row of the
        # commit status is written there, so it commits (or rolls back) with the move.
        build_changed.connect(record_status, dispatch_uid="forges.record_status")
