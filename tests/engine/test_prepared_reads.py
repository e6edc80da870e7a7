"""The named reads as prepared statements of each database session (``harbor.named_reads``):
prepared once per session, kept across rollbacks, prepared again on a new session or after
a failure, unchanged by a migration that adds a column, and off when the setting says so."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from builds.engine import rows
from builds.models import Build, BuildTarget
from harbor import named_reads
from tests.engine.conftest import waiting_step

pytestmark = pytest.mark.django_db


def _prepared_statements() -> dict[str, str]:
    """The session's prepared statements: name -> the query string that prepared it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements")
        return dict(cursor.fetchall())


def _executed(action) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        action()
    return [query["sql"] for query in captured]


def _new_session() -> None:
    """Close the test's connection: the next statement opens a session of its own. Only
    where the test's transaction is the database's own (``transaction=True``)."""
    connection.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_tasks")
def test_a_read_is_prepared_once_per_session_and_executed_after(start):
    build = start([waiting_step("ci")]).build
    _new_session()
    read = lambda: rows.lock_build(build.pk)  # noqa: E731
    with transaction.atomic():
        [first] = _executed(read)
    with transaction.atomic():
        [second] = _executed(read)
        locked = read()
    name = first.split()[1]
    assert first.startswith(f"PREPARE {name} AS SELECT") and f"; EXECUTE {name}(" in first
    assert second == f"EXECUTE {name}({build.pk})"
    assert "FOR NO KEY UPDATE OF b" in _prepared_statements()[name]
    assert (locked.pk, locked.status, locked.plan.name) == (
        build.pk,
        Build.objects.get(pk=build.pk).status,
        build.plan.name,
    )
    # A new session knows none of the old one's statements: the read prepares it again.
    _new_session()
    with transaction.atomic():
        [again] = _executed(read)
    assert again.startswith("PREPARE ")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_tasks")
def test_a_rollback_keeps_the_prepared_read(start):
    driver = start([waiting_step("ci")])
    phid = driver.target("ci").phid
    _new_session()
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        rows.lock_receiving_target(phid)
        raise ZeroDivisionError
    with transaction.atomic():
        [executed] = _executed(lambda: rows.lock_receiving_target(phid))
        found = rows.lock_receiving_target(phid)
    assert executed.startswith("EXECUTE ")
    assert (found.phid, found.build.pk) == (phid, driver.build.pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_tasks")
def test_a_read_whose_first_run_failed_to_lock_keeps_its_statement(start, other, build_row_held):
    build = start([waiting_step("ci")]).build
    _new_session()
    build_row_held(build.pk)
    # NOWAIT fails in the EXECUTE, after the PREPARE ran: the statement exists, but the
    # read cannot tell which of the two failed.
    with pytest.raises(rows.BuildLocked), transaction.atomic():
        rows.lock_build(build.pk, wait=False)
    with CaptureQueriesContext(connection) as captured:
        with pytest.raises(rows.BuildLocked), transaction.atomic():
            rows.lock_build(build.pk, wait=False)
    [failed_again] = [q["sql"] for q in captured if q["sql"].startswith(("PREPARE", "EXECUTE"))]
    other.rollback()  # the row is free again
    with transaction.atomic():
        [executed] = _executed(lambda: rows.lock_build(build.pk, wait=False))
        locked = rows.lock_build(build.pk, wait=False)
    # The failure came from the EXECUTE: the statement stays, and no failure adds another.
    assert failed_again.startswith("EXECUTE ") and executed == failed_again
    assert locked.pk == build.pk
    nowait = [text for text in _prepared_statements().values() if "NOWAIT" in text]
    assert len(nowait) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_tasks")
def test_a_read_deallocated_behind_its_back_fails_once_then_is_prepared_again(start):
    build = start([waiting_step("ci")]).build
    _new_session()
    with transaction.atomic():
        rows.lock_build(build.pk)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as a pooler's DISCARD ALL would
    with pytest.raises(DatabaseError), transaction.atomic():
        rows.lock_build(build.pk)
    with transaction.atomic():
        [executed] = _executed(lambda: rows.lock_build(build.pk))
    assert executed.startswith("PREPARE ")


def test_a_column_added_by_a_migration_leaves_a_prepared_read_as_it_was(start):
    driver = start([waiting_step("ci")])
    target = driver.target("ci")
    before = rows.lock_claimed_target(target.pk)  # prepares the read, if not yet prepared
    with connection.cursor() as cursor:
        # Rolled back with the test's transaction. Had the read selected ``t.*``, its
        # prepared statement's result would change: "cached plan must not change result
        # type".
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no checks pending at the ALTER
        cursor.execute(f"ALTER TABLE {BuildTarget._meta.db_table} ADD COLUMN later integer")
    [executed] = _executed(lambda: rows.lock_claimed_target(target.pk))
    after = rows.lock_claimed_target(target.pk)
    assert executed.startswith("EXECUTE ")  # the statement prepared before the ALTER
    assert (after.pk, after.status, after.build.pk) == (before.pk, before.status, before.build.pk)
    assert not hasattr(after, "later")


def test_with_the_setting_off_a_read_runs_as_plain_sql(start, settings):
    settings.DATABASE_PREPARED_READS = False
    driver = start([waiting_step("ci")])
    phid = driver.target("ci").phid
    [executed] = _executed(lambda: rows.lock_receiving_target(phid))
    assert executed.startswith("SELECT ") and f"= '{phid}' FOR NO KEY UPDATE OF t" in executed


def test_the_statement_of_an_execute_is_read_back_from_the_session(start):
    driver = start([waiting_step("ci")])
    [executed] = _executed(lambda: rows.builds_affecting(driver.build.buildable_id))
    [again] = _executed(lambda: rows.builds_affecting(driver.build.buildable_id))
    expected = rows.BUILDS_AFFECTING_SQL.replace("%s", "$1")
    assert again.startswith("EXECUTE ")
    assert named_reads.statement_of(executed) == named_reads.statement_of(again) == expected
    assert named_reads.statement_of("SELECT 1") == "SELECT 1"
    with pytest.raises(LookupError):
        named_reads.statement_of("EXECUTE harbor_read_0(1)")


@pytest.mark.django_db(transaction=True)
def test_a_read_whose_prepare_failed_is_prepared_again():
    _new_session()
    sql = "SELECT id FROM harbor_later WHERE id = %s"
    with pytest.raises(DatabaseError), transaction.atomic():
        named_reads.read(Build, sql, [1])  # no such table: the PREPARE itself fails
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE harbor_later (id bigint PRIMARY KEY)")
        cursor.execute("INSERT INTO harbor_later VALUES (1)")
    [executed] = _executed(lambda: named_reads.read(Build, sql, [1]))
    assert executed.startswith("PREPARE ")
    assert [build.pk for build in named_reads.read(Build, sql, [1])] == [1]
