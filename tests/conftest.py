"""Fixtures shared by every test: users, tokens, plans and buildables on real PostgreSQL."""

import pytest

from accounts.models import ApiToken, User
from builds.models import Buildable, BuildPlan, BuildStep


@pytest.fixture
def user(db) -> User:
    return User.objects.create_user(username="alice", password="alice-password")


@pytest.fixture
def api_token(user) -> str:
    """A clear API token for ``user``."""
    return ApiToken.issue(user, name="test")[1]


def make_plan(name: str, steps: list[dict], **fields) -> BuildPlan:
    """Create a plan with ``steps`` given as dicts of BuildStep fields (``key`` required)."""
    plan = BuildPlan.objects.create(name=name, **fields)
    for sequence, step in enumerate(steps):
        step = {"name": step["key"], "step_type": "sleep", "config": {}, **step}
        BuildStep.objects.create(plan=plan, sequence=sequence, **step)
    return plan


@pytest.fixture
def buildable(db) -> Buildable:
    return Buildable.objects.create(
        repository="https://example.com/repo.git", ref="main", commit="a" * 40
    )


@pytest.fixture(scope="session", autouse=True)
def _test_database_left_without_sessions(django_db_setup, django_db_blocker):
    """At the end of the run, end the sessions still on the test database so that it can be
    dropped: PostgreSQL refuses while any is connected, and the database stays behind. The
    usual ones are the live server's request threads, each waiting on a keep-alive socket
    of a client that was never closed (the Conduit client opens a session per method)."""
    yield
    from django.conf import settings
    from django.db import connection

    if connection.settings_dict["NAME"] != settings.DATABASES["default"]["TEST"]["NAME"]:
        return  # no test of this run used the database, so none was made to be dropped
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session")
def celery_workers(django_db_setup, django_db_blocker):
    """Two real Celery worker processes (two pool processes each) on the test database,
    for the whole session. Tests using them need ``django_db(transaction=True)`` so the
    workers can see their rows."""
    from tests.workers import WorkerProcess

    workers = [WorkerProcess(concurrency=2).start() for _ in range(2)]
    yield workers
    for worker in workers:
        worker.stop()
