"""Starting a build: its statements, its first pass, its timeline, and two callers creating
one buildable."""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from builds import engine, locks
from builds.engine.transitions import build_changed
from builds.models import Build, Buildable, BuildTarget, ConcurrencyGroup, StatusEvent
from tests.conftest import make_plan
from tests.interleavings.harness import Dispatched

STEPS = [{"key": "compile"}, {"key": "ship", "depends_on": ["compile"]}]
SAVEPOINT_STATEMENTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def statements_of_a_start(plan, commit: str, initiator=None) -> list[str]:
    """The SQL of finding (or creating) a buildable and starting ``plan`` for it, inside a
    caller's transaction as every caller has one."""
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        buildable = engine.find_or_create_buildable("repo", "main", commit)
        engine.start_build(plan, buildable, initiator=initiator)
    return [query["sql"] for query in captured.captured_queries]


@pytest.mark.django_db
def test_a_start_for_a_new_buildable_takes_one_savepoint_and_one_event_insert():
    plan = make_plan("deploy", STEPS)
    sql = statements_of_a_start(plan, "a" * 40)
    savepoints = [s for s in sql if s.startswith(SAVEPOINT_STATEMENTS)]
    # get_or_create's own, around the buildable's insert: it lets a losing racer read the
    # winner's row without failing its caller's transaction.
    assert len(savepoints) == 2, savepoints
    event_inserts = [s for s in sql if s.startswith('INSERT INTO "builds_statusevent"')]
    assert len(event_inserts) == 1, event_inserts
    assert len(sql) == 11, sql


@pytest.mark.django_db
def test_a_start_for_a_known_buildable_takes_no_savepoint():
    plan = make_plan("deploy", STEPS)
    statements_of_a_start(plan, "a" * 40)
    sql = statements_of_a_start(plan, "a" * 40)
    assert not [s for s in sql if s.startswith(SAVEPOINT_STATEMENTS)], sql
    assert len(sql) == 8, sql


@pytest.mark.django_db
def test_a_start_records_the_pending_build_its_first_pass_and_the_building_buildable(
    django_user_model,
):
    plan = make_plan("deploy", STEPS)
    person = django_user_model.objects.create_user("ana")
    buildable = engine.find_or_create_buildable("repo", "main", "a" * 40)
    build = engine.start_build(plan, buildable, initiator=person)
    compile_step = BuildTarget.objects.get(build=build)
    events = list(StatusEvent.objects.order_by("pk"))
    assert [(e.build_id, e.target_id, e.buildable_id, e.to_status) for e in events] == [
        (build.pk, None, None, Build.Status.PENDING),
        (build.pk, None, None, Build.Status.BUILDING),
        (build.pk, compile_step.pk, None, BuildTarget.Status.PENDING),
        (None, None, buildable.pk, Buildable.Status.BUILDING),
    ]
    assert events[0].actor == person
    assert events[0].cause == StatusEvent.Cause.COMMAND


@pytest.mark.django_db
def test_a_start_runs_the_first_pass_and_queues_its_targets_after_the_commit(
    buildable, monkeypatch
):
    """The first steps are queued to run by the start's own commit: no update_build."""
    sent = Dispatched().install(monkeypatch)
    queued, updates = sent.runs, sent.updates
    plan = make_plan("fan", [{"key": "a"}, {"key": "b"}, {"key": "join", "depends_on": ["a", "b"]}])
    with TestCase.captureOnCommitCallbacks(execute=True):
        with transaction.atomic():
            build = engine.start_build(plan, buildable)
            assert queued == [], "queued before the start committed"
    build.refresh_from_db()
    assert (build.status, build.generation) == (Build.Status.BUILDING, 1)
    first = BuildTarget.objects.filter(build=build).order_by("step_key")
    assert [(t.step_key, t.status) for t in first] == [("a", "pending"), ("b", "pending")]
    assert sorted(queued) == sorted(t.pk for t in first)
    assert updates == []
    assert not locks.update_request_queued(build.pk)


@pytest.mark.django_db
def test_a_start_of_a_plan_with_concurrency_groups_leaves_admission_to_a_queued_pass(
    buildable, monkeypatch
):
    """Admission locks group rows, and one transaction may start several builds after
    locking their buildable's row: the start takes no group lock and queues the first pass,
    and the build is announced pending, as it is seen until that pass."""
    updates, announced = Dispatched().install(monkeypatch).updates, []
    build_changed.connect(
        announced_as := lambda sender, build, **kw: announced.append(build.status)
    )
    step = {"key": "deploy", "config": {"concurrency": {"group": "deploy-main", "limit": 1}}}
    try:
        with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
            build = engine.start_build(make_plan("deploy", [step]), buildable)
            assert not ConcurrencyGroup.objects.exists(), "the start made (and locked) a group row"
    finally:
        build_changed.disconnect(announced_as)
    build.refresh_from_db()
    assert (build.status, build.generation) == (Build.Status.PENDING, 0)
    assert not BuildTarget.objects.filter(build=build).exists()
    assert updates == [build.pk]
    assert announced == [Build.Status.PENDING]
    engine.update_build(build.pk)
    assert BuildTarget.objects.get(build=build).date_admitted is not None


@pytest.mark.django_db
def test_a_start_whose_plan_has_no_step_to_run_completes_the_build_and_its_buildable(buildable):
    """A pass deadlocks a build none of whose steps can ever run; at the start, the
    buildable's roll-up must follow its move to building, not precede it."""
    plan = make_plan("stuck", [{"key": "a", "depends_on": ["missing"]}])
    build = engine.start_build(plan, buildable)
    build.refresh_from_db()
    buildable.refresh_from_db()
    assert build.status == Build.Status.DEADLOCKED
    assert buildable.status == Buildable.Status.FAILED


@pytest.mark.django_db(transaction=True)
def test_two_callers_creating_one_buildable_at_once_both_start_builds_for_the_same_row():
    """Each caller's own transaction, as the REST and web views have: the second insert
    waits on the unique index until the first commits, then reads the first's row, and its
    transaction goes on to start its build."""
    plan = make_plan("deploy", STEPS)
    first_inserted = threading.Event()
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                buildable = engine.find_or_create_buildable("repo", "main", "c" * 40)
                first_inserted.set()
                # Hold the uncommitted row while the second caller runs into it.
                wait_until_blocked_on_a_lock()
                results["first"] = engine.start_build(plan, buildable).buildable_id
        except BaseException as error:  # noqa: BLE001 (reported by the test's thread)
            errors.append(error)
            first_inserted.set()
        finally:
            connections.close_all()

    def second() -> None:
        try:
            first_inserted.wait(10)
            with transaction.atomic():
                buildable = engine.find_or_create_buildable("repo", "main", "c" * 40)
                results["second"] = engine.start_build(plan, buildable).buildable_id
        except BaseException as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert results["first"] == results["second"]
    assert Buildable.objects.filter(commit="c" * 40).count() == 1
    assert Build.objects.filter(buildable_id=results["first"]).count() == 2


def wait_until_blocked_on_a_lock(timeout: float = 10) -> None:
    """Return once another backend waits on a lock (the second caller's insert), so the
    race is certain rather than likely; fails the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # Inside a transaction the activity view is read once and kept: read it anew.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second caller never waited on the first's insert")
