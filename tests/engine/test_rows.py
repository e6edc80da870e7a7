"""The named SQL reads of the hot path (``builds.engine.rows``, ``ApiToken.find_active``),
each against the ORM query it stands in for, and ``harbor.named_reads``, which gives them
model instances."""

import psycopg2.errors
import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import ApiToken, active_token_sql, hash_token
from builds.engine import rows
from builds.models import Build, Buildable, BuildMessage, BuildPlan, BuildTarget
from harbor import named_reads
from tests.engine.conftest import waiting_step
from tests.statements import statements_run

pytestmark = pytest.mark.django_db


def test_the_receiving_target_comes_with_what_sendmessage_checks(start):
    driver = start([waiting_step("ci")])
    target = driver.target("ci")
    with transaction.atomic():
        found = rows.lock_receiving_target(target.phid)
    build = Build.objects.select_related("plan").get(pk=driver.build.pk)
    assert (found.pk, found.phid, found.status, found.step_key) == (
        target.pk,
        target.phid,
        "pending",
        "ci",
    )
    assert (found.build.pk, found.build.status, found.build.generation) == (
        build.pk,
        build.status,
        build.generation,
    )
    assert (found.build.plan.pk, found.build.plan.name) == (build.plan.pk, build.plan.name)
    # A field the read leaves out is deferred: reading it costs a query, never a wrong value.
    assert found.build.plan_snapshot == build.plan_snapshot
    assert rows.lock_receiving_target("PHID-HMBT-nosuchtarget") is None


def test_the_pass_reads_match_the_orm(start):
    driver = start([waiting_step("ci"), waiting_step("lint")])
    build = driver.refresh()
    driver.run("ci")
    driver.send("ci", "pass")
    driver.send("lint", "work")  # never consumed, so never read
    with transaction.atomic():
        assert rows.lock_build(build.pk).plan_snapshot == build.plan_snapshot
        assert rows.lock_buildable(build.buildable_id).pk == build.buildable_id
        read = [(m.pk, m.type) for m in rows.unconsumed_messages(build.pk)]
        targets = rows.generation_targets(build.pk, build.generation)
    unconsumed = BuildMessage.objects.filter(
        build=build, is_consumed=False, type__in=rows.CONSUMABLE
    ).order_by("pk")
    assert read == [(m.pk, m.type) for m in unconsumed] != []
    expected = BuildTarget.objects.filter(build=build, generation=build.generation)
    assert sorted(
        (t.pk, t.status, t.config == e.config)
        for t, e in zip(sorted(targets, key=lambda t: t.pk), expected.order_by("pk"), strict=True)
    ) == sorted((e.pk, e.status, True) for e in expected)
    # Only the worker running a target uses its variables: a pass leaves them unread.
    assert {frozenset(t.get_deferred_fields()) for t in targets} == {frozenset({"variables"})}
    with pytest.raises(Build.DoesNotExist), transaction.atomic():
        rows.lock_build(build.pk + 1000)
    with pytest.raises(Buildable.DoesNotExist), transaction.atomic():
        rows.lock_buildable(build.buildable_id + 1000)


WEBHOOK = {"url": "https://chat.example.com/h", "events": ["build.passed"], "secret": "hook"}


def test_the_locked_build_comes_with_what_a_pass_reads_of_its_plan(start):
    driver = start([waiting_step("ci")], behaviors={"restartable": "failed"}, notify=[WEBHOOK])
    with transaction.atomic():
        build = rows.lock_build(driver.build.pk)
    plan = BuildPlan.objects.get(pk=build.plan_id)
    assert build.plan.pk == plan.pk
    # Decoded as the ORM decodes them: a list of dicts and a dict, not JSON text.
    assert build.plan.notify == plan.notify == [WEBHOOK]
    assert build.plan.behaviors == plan.behaviors == {"restartable": "failed"}
    assert build.plan.auto_key is plan.auto_key is None
    assert build.plan.name == plan.name
    assert {"run_group_id", "triggers"} <= build.plan.get_deferred_fields()
    assert not {"notify", "name"} & build.plan.get_deferred_fields()


def test_the_locked_build_comes_with_what_new_targets_read_of_its_buildable(start):
    driver = start([waiting_step("ci")])
    distinct = {
        **{"object_phid": "PHID-DREV-1", "repository": "https://example.com/app.git"},
        **{"ref": "feature", "commit": "c" * 40, "diff": "12", "revision": "7"},
        **{"base_ref": "main", "forge": "github", "forge_repository": "acme/app"},
    }
    Buildable.objects.filter(pk=driver.build.buildable_id).update(**distinct)
    with transaction.atomic():
        build = rows.lock_build(driver.build.pk)
    buildable = Buildable.objects.get(pk=driver.build.buildable_id)
    for name in rows._PASS_BUILDABLE_FIELDS:
        assert getattr(build.buildable, name) == getattr(buildable, name), name
    assert {name: getattr(build.buildable, name) for name in distinct} == distinct
    # Its status changes under its own lock: a pass reads it there, never here.
    assert "status" in build.buildable.get_deferred_fields()


def test_a_pass_creating_targets_reads_the_buildable_only_with_the_build(start):
    driver = start([{"key": "ci"}, waiting_step("lint", depends_on=["ci"])])
    driver.run("ci")
    with CaptureQueriesContext(connection) as captured:
        driver.update()
    assert driver.target("lint").variables["buildable.commit"] == driver.build.buildable.commit
    buildable_reads = [s for s in statements_run(captured) if 'FROM "builds_buildable"' in s]
    assert buildable_reads == [], buildable_reads


def test_a_pass_reads_its_plan_only_in_the_statement_that_locks_its_build(start):
    driver = start([waiting_step("ci")], notify=[WEBHOOK])
    driver.run("ci")
    driver.send("ci", "pass")
    with CaptureQueriesContext(connection) as captured:
        driver.update()  # passes the build: its receiver reads the plan's webhooks
        driver.command("restart")
        driver.update()  # the restart checks the plan's auto_key and behaviors
    assert driver.refresh().generation == 2
    assert driver.build.outbound_deliveries.filter(event="build.passed").count() == 1
    statements = statements_run(captured)
    passes = [s for s in statements if "FOR NO KEY UPDATE OF b" in s]
    plan_reads = [s for s in statements if 'FROM "builds_buildplan"' in s]
    assert (len(passes), plan_reads) == (2, [])


def _locks_seen_elsewhere(other, lock, rows_to_try: dict) -> dict:
    """Inside a transaction that ran ``lock()``, whether the ``other`` connection finds each
    of ``rows_to_try`` (name: (model, pk, row lock mode to try, e.g. "UPDATE")) "locked" or
    "free"."""
    outcome = {}
    with transaction.atomic():
        lock()
        for name, (model, pk, mode) in rows_to_try.items():
            table = connection.ops.quote_name(model._meta.db_table)
            with other.cursor() as cursor:
                try:
                    cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR {mode} NOWAIT", [pk])
                    outcome[name] = "free"
                except psycopg2.errors.LockNotAvailable:
                    outcome[name] = "locked"
    return outcome


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_tasks")
def test_locking_a_build_leaves_its_plans_row_unlocked(start, other):
    build = start([waiting_step("ci")]).build
    seen = _locks_seen_elsewhere(
        other,
        lambda: rows.lock_build(build.pk),
        {"build": (Build, build.pk, "UPDATE"), "plan": (BuildPlan, build.plan_id, "UPDATE")},
    )
    assert seen == {"build": "locked", "plan": "free"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_tasks")
def test_locking_a_build_held_elsewhere_without_waiting_raises(start, build_row_held):
    build = start([waiting_step("ci")]).build
    build_row_held(build.pk)
    with CaptureQueriesContext(connection) as captured:
        with pytest.raises(rows.BuildLocked), transaction.atomic():
            rows.lock_build(build.pk, wait=False)
    # Not after the fixture's lock_timeout, which fails a wait with the same error code.
    locks = [s for s in statements_run(captured) if "FOR NO KEY" in s]
    assert [s.endswith(" NOWAIT") for s in locks] == [True]


def test_a_claim_reads_its_target_and_build_as_the_orm_does(start, django_assert_num_queries):
    driver = start([waiting_step("ci")])
    target = driver.target("ci")
    with transaction.atomic():
        found = rows.lock_claimed_target(target.pk)
    expected = BuildTarget.objects.select_related("build").get(pk=target.pk)
    with django_assert_num_queries(0):  # the build came with the target, every field of both
        for model, got, want in [
            (BuildTarget, found, expected),
            (Build, found.build, expected.build),
        ]:
            names = [f.attname for f in model._meta.concrete_fields]
            assert [getattr(got, n) for n in names] == [getattr(want, n) for n in names]
            assert not got.get_deferred_fields()
            # Stored rows: ``EngineOwned.save`` refuses to write them back.
            assert (got._state.adding, got._state.db) == (False, "default")
    assert isinstance(found.build.plan_snapshot, list)
    assert rows.lock_claimed_target(target.pk + 1000) is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_tasks")
def test_a_claim_locks_its_target_and_leaves_its_build_free_for_a_pass(start, other):
    driver = start([waiting_step("ci")])
    target = driver.target("ci")
    seen = _locks_seen_elsewhere(
        other,
        lambda: rows.lock_claimed_target(target.pk),
        {
            # KEY SHARE conflicts only with FOR UPDATE: the claim's lock is that strong.
            "target": (BuildTarget, target.pk, "KEY SHARE"),
            "build": (Build, driver.build.pk, "UPDATE"),
        },
    )
    assert seen == {"target": "locked", "build": "free"}


def test_builds_affecting_reads_each_build_with_its_plans_behavior(start):
    driver = start([waiting_step("ci")])
    build = driver.refresh()
    assert rows.builds_affecting(build.buildable_id) == [(build.status, "always")]


def test_the_token_lookup_returns_the_token_with_its_user(user):
    token, clear = ApiToken.issue(user, "ci")
    found = ApiToken.find_active(clear)
    expected = ApiToken.objects.select_related("user").get(pk=token.pk)
    assert (found.pk, found.token_hash, found.name) == (token.pk, token.token_hash, "ci")
    assert (found.user.pk, found.user.username, found.user.phid, found.user.is_active) == (
        user.pk,
        user.username,
        expected.user.phid,
        expected.user.is_active,
    )
    assert found.user.date_joined == expected.user.date_joined
    assert ApiToken.find_active(clear + "x") is None
    ApiToken.objects.filter(pk=token.pk).update(revoked=token.created)
    assert ApiToken.find_active(clear) is None


def test_a_named_read_gives_what_the_orm_gives_for_every_column_list(start):
    driver = start([waiting_step("ci")])
    target = driver.target("ci")
    table = BuildTarget._meta.db_table
    everything = named_reads.read(
        BuildTarget, f'SELECT * FROM "{table}" WHERE id = %s', [target.pk]
    )
    expected = BuildTarget.objects.get(pk=target.pk)
    assert [getattr(everything[0], f.attname) for f in BuildTarget._meta.concrete_fields] == [
        getattr(expected, f.attname) for f in BuildTarget._meta.concrete_fields
    ]
    assert isinstance(everything[0].config, dict)  # a JSON column goes through its converter
    # Another column list of the same model has its own shape: what it leaves out is
    # deferred, and a column named after no field comes as an attribute, unconverted.
    some = named_reads.read(
        BuildTarget,
        f'SELECT status, id, config::text AS config_text FROM "{table}" WHERE id = %s',
        [target.pk],
    )[0]
    assert (some.pk, some.status) == (target.pk, expected.status)
    assert "config" in some.get_deferred_fields()
    assert isinstance(some.config_text, str)
    assert some.config == expected.config  # read when asked for, as any deferred field


def test_each_named_read_gives_the_instances_raw_gives(start, user):
    driver = start([waiting_step("ci"), waiting_step("lint")])
    build = driver.refresh()
    driver.run("ci")
    driver.send("ci", "pass")
    target = driver.target("ci")
    _, clear = ApiToken.issue(user, "ci")
    reads = [
        (BuildTarget, rows.RECEIVING_TARGET_SQL, [target.phid]),
        (BuildTarget, rows.CLAIMED_TARGET_SQL, [target.pk]),
        (Build, rows.LOCK_BUILD_SQL, [build.pk]),
        (Buildable, rows.LOCK_BUILDABLE_SQL, [build.buildable_id]),
        (BuildMessage, rows.UNCONSUMED_SQL, [build.pk, rows.CONSUMABLE]),
        (BuildTarget, rows.GENERATION_TARGETS_SQL, [build.pk, build.generation]),
        (ApiToken, active_token_sql(), [hash_token(clear)]),
    ]
    named_reads._row_shape.cache_clear()
    for model, sql, params in reads:
        with transaction.atomic():
            expected = [_state_and_values(i) for i in model.objects.raw(sql, params)]
            # The first read works its shape out, the second finds it cached.
            for _ in range(2):
                got = [_state_and_values(i) for i in named_reads.read(model, sql, params)]
                assert got == expected != [], sql


def _state_and_values(instance) -> dict:
    """What a read left on ``instance``: every loaded field (a deferred one is absent),
    every extra column, and its state."""
    values = {k: v for k, v in vars(instance).items() if k != "_state"}
    return {**values, "adding": instance._state.adding, "db": instance._state.db}


def test_a_named_read_must_select_the_primary_key(start):
    driver = start([waiting_step("ci")])
    table = BuildTarget._meta.db_table
    with pytest.raises(FieldDoesNotExist):
        named_reads.read(
            BuildTarget, f'SELECT status FROM "{table}" WHERE build_id = %s', [driver.build.pk]
        )
