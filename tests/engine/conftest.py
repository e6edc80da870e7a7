"""Driving the engine step by step in one process, without Celery.

``Driver`` calls the same engine functions the tasks call (``update_build``,
``begin_target``/``finish_target``, ``receive_message``) but decides the order itself.
These tests run inside a transaction that is rolled back, so the follow-up tasks the engine
queues ``on_commit`` are never sent.
"""

import itertools

import psycopg2
import pytest
from celery import current_app
from django.db import connection

from builds import engine
from builds.models import Build, BuildTarget
from tests.conftest import make_plan


class Driver:
    """Runs a build's events in the order a test chooses."""

    def __init__(self, build: Build):
        self.build = build

    def refresh(self) -> Build:
        self.build.refresh_from_db()
        return self.build

    def update(self):
        return engine.update_build(self.build.pk)

    def target(self, key: str, generation: int | None = None) -> BuildTarget:
        generation = generation if generation is not None else self.refresh().generation
        return BuildTarget.objects.get(
            build=self.build, step_key=key, generation=generation, superseded_by=""
        )

    def claim(self, key: str) -> engine.Claim | None:
        return engine.begin_target(self.target(key).pk)

    def run(self, key: str, error: str | None = None) -> engine.Claim:
        """Claim the target of ``key`` and finish it (failed if ``error``)."""
        claim = self.claim(key)
        assert claim is not None, f"target {key} could not be claimed"
        engine.finish_target(claim, error=error)
        return claim

    def send(self, key: str, message_type: str, **kwargs):
        return engine.receive_message(self.target(key).phid, message_type, **kwargs)

    def command(self, command: str, **kwargs):
        return engine.receive_message(self.build.phid, command, **kwargs)


_plan_numbers = itertools.count(1)


@pytest.fixture
def start(buildable):
    """Start a build of a plan made from ``steps``, after its first pass (the start's own,
    or for a plan with concurrency groups the queued one, run here); return its Driver.
    ``pending=True`` gives a build still ``pending`` instead (``pending_build``)."""

    def start_plan(steps: list[dict], pending: bool = False, **plan_fields) -> Driver:
        # A counter, not ``id(steps)``: a list freed by an earlier call can lend its id to
        # the next one, and plan names are unique.
        plan = make_plan(f"plan-{len(steps)}-{next(_plan_numbers)}", steps, **plan_fields)
        if pending:
            return Driver(pending_build(plan, buildable))
        driver = Driver(engine.start_build(plan, buildable))
        if driver.refresh().status == Build.Status.PENDING:
            driver.update()
        return driver

    return start_plan


def pending_build(plan, buildable) -> Build:
    """A build of ``plan`` left ``pending`` before its first pass, as a Harbor that queued
    that pass (or Harbormaster) leaves it: a start now passes at once, yet the engine still
    takes such a build up, and commands still apply to it."""
    return Build.objects.create(
        plan=plan, buildable=buildable, plan_snapshot=plan.snapshot(), status=Build.Status.PENDING
    )


def waiting_step(key: str, **fields) -> dict:
    return {"key": key, "step_type": "sleep", "wait_for_message": True, **fields}


# For tests whose rows are committed (``django_db(transaction=True)``), so that a second
# connection sees them.


@pytest.fixture
def no_tasks(monkeypatch):
    """Send no task: the rows are committed, so a Celery worker another test of the session
    started would take the build's targets (and claim them, and pass the build, taking its
    row locks) before the test does."""
    monkeypatch.setattr(current_app, "send_task", lambda *args, **kwargs: None)


@pytest.fixture
def other():
    """A second connection to the test database, in autocommit: a lock it takes is released
    by the statement's end unless a test opens a transaction on it."""
    db = connection.settings_dict
    conn = psycopg2.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"])
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def build_row_held(other):
    """Hold a build's row lock from the second connection, as a pass would, while the test
    runs; the test's own statements give up after a short lock wait instead of hanging."""
    held = []

    def hold(build_id: int) -> None:
        other.autocommit = False
        with other.cursor() as cursor:
            table = connection.ops.quote_name(Build._meta.db_table)
            cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR NO KEY UPDATE", [build_id])
        held.append(build_id)

    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '2s'")
    yield hold
    with connection.cursor() as cursor:
        cursor.execute("RESET lock_timeout")
    if held:
        other.rollback()
