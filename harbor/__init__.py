"""Harbor: a build orchestrator in the tradition of Phabricator's Harbormaster."""

from harbor.celery import app as celery_app

__all__ = ["celery_app"]
