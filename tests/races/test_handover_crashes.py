"""The worker's own pass and its hand-over (docs/design.md §6.2 step 5, §3.6) under crashes
and races, on real workers: a worker killed holding a claim a pass made for it, chains
longer than one task's hand-overs, failing and retried steps in a chain, Redis losing its
scripts, and the database dropping the connection of the pass that carries a finish.

Each step that counts its runs is a command writing to a file of the test's own, so "the
step ran once" is read from what the step did, not from the rows the engine wrote.
"""

import os
import signal
import threading
import time

import pytest
import redis
from django.db import connection

from builds import engine, locks
from builds.engine import dispatch
from builds.models import Build, BuildMessage, BuildTarget, StatusEvent
from tests.conftest import make_plan
from tests.interleavings import monitor
from tests.races import test_crashes as crashes
from tests.races.conftest import complete_while, start_builds
from tests.races.test_crashes import (
    BOUND,
    LEASE,
    SLACK,
    TICK,
    RowHolder,
    assert_clean,
    wait_status,
)
from tests.races.test_wide_builds import deliveries
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]

# The crash tests' fixtures: queues (and a redis-server) of the test's own.
cluster = crashes.cluster
own_redis = crashes.own_redis


def counting(key: str, counter, *, passes_on: int = 1, then: str = "", **fields) -> dict:
    """A command step that counts its runs in the file ``counter``, fails until run
    ``passes_on``, and runs ``then`` (a shell command) before passing."""
    command = f"n=$(($(cat {counter} 2>/dev/null || echo 0) + 1)); echo $n > {counter}; "
    command += f"test $n -ge {passes_on} || exit 1; {then or 'true'}"
    config = {"command": command, **fields.pop("config", {})}
    return {"key": key, "step_type": "command", "config": config, **fields}


def runs(counter) -> int:
    return int(counter.read_text()) if counter.exists() else 0


def settled_once(build: Build) -> None:
    """Each target of the build completed exactly once."""
    for target in BuildTarget.objects.filter(build=build):
        completions = StatusEvent.objects.filter(
            target=target, to_status__in=BuildTarget.COMPLETE
        ).count()
        assert completions == 1, f"{target.step_key}#{target.step_attempt}: {completions}"


def chain(length: int, tmp_path) -> list[dict]:
    return [
        counting(f"s{i:02}", tmp_path / f"s{i:02}", depends_on=[f"s{i - 1:02}"] if i else [])
        for i in range(length)
    ]


# -- a worker killed holding a claim its pass made for it --------------------------------


def run_plan(c, plan, buildable) -> Build:
    """Start a build of ``plan`` and let the cluster ``c``'s workers take its tasks."""
    build = engine.start_build(plan, buildable)
    c.send_recorded()
    return build


def wait_building(build: Build, step_key: str) -> BuildTarget:
    """The target of ``step_key`` once a worker has claimed it."""
    return wait_for(
        lambda: BuildTarget.objects.filter(
            build=build, step_key=step_key, status="building"
        ).first(),
        timeout=SLACK,
        interval=0.01,
    )


def test_a_worker_killed_holding_a_handed_over_claim_is_replaced_after_the_lease(
    cluster, buildable, tmp_path
):
    """The pass after ``one`` claims ``two`` for the worker; the worker is killed as soon as
    that claim is seen. Nobody renews its lease: once it lapses the repair runs ``two``
    again, and the build passes, ``one`` having run once."""
    c = cluster()
    victim = c.worker(queues="engine,targets")  # one process: the hand-over is certain
    steps = [
        counting("one", tmp_path / "one"),
        counting("two", tmp_path / "two", then="sleep 3", depends_on=["one"]),
    ]
    build = run_plan(c, make_plan("killed-holding-a-claim", steps), buildable)
    two = wait_building(build, "two")
    victim.kill()
    held_until = BuildTarget.objects.get(pk=two.pk).lease_expires
    assert two.attempt == 1
    assert deliveries([victim], "workers.tasks.run_target") == 1, "two was not handed over"
    c.worker(queues="engine,targets", beat=True)
    wait_status(build, "passed", timeout=LEASE + TICK + BOUND + 3 + SLACK)
    two.refresh_from_db()
    assert (two.attempt, two.lost_claims) == (2, 1)
    reclaim = StatusEvent.objects.get(target=two, detail__startswith="claimed again")
    assert reclaim.at >= held_until, "two ran again while its lease held"
    assert runs(tmp_path / "one") == 1
    assert runs(tmp_path / "two") in (1, 2)  # killed before or during its first run
    settled_once(build)
    assert_clean(build)


# -- chains longer than one task's hand-overs --------------------------------------------


def test_a_chain_longer_than_one_tasks_handoffs_runs_each_step_once(cluster, buildable, tmp_path):
    """25 steps in a row: the first task runs ``HANDOFFS_PER_TASK`` of them, the last of
    those queues the next, whose task runs the rest. Each step runs once."""
    from workers.tasks import HANDOFFS_PER_TASK

    length = HANDOFFS_PER_TASK + 5
    c = cluster()
    worker = c.worker(queues="engine,targets")
    build = run_plan(c, make_plan("long-chain", chain(length, tmp_path)), buildable)
    wait_status(build, "passed", timeout=60)
    assert [runs(tmp_path / f"s{i:02}") for i in range(length)] == [1] * length
    targets = BuildTarget.objects.filter(build=build)
    assert sorted(t.attempt for t in targets) == [1] * length
    wait_for(lambda: deliveries([worker], "workers.tasks.run_target") >= 2)
    time.sleep(0.5)  # a third delivery, if any, would be logged by now
    assert deliveries([worker], "workers.tasks.run_target") == 2
    assert deliveries([worker], "workers.tasks.update_build") == 0  # the start passed itself
    settled_once(build)
    assert_clean(build)


# -- failing and retried steps in a chain -----------------------------------------------


def test_a_failing_step_in_a_chain_is_retried_by_the_workers_own_pass(cluster, buildable, tmp_path):
    """``two`` fails twice and passes on its third attempt; each retry is a new target the
    worker's pass creates and hands it, so the whole build takes one ``run_target``."""
    c = cluster()
    worker = c.worker(queues="engine,targets")
    retry = {"retry": {"limit": 2, "on": ["failed"]}}
    steps = [
        counting("one", tmp_path / "one"),
        counting("two", tmp_path / "two", passes_on=3, config=retry, depends_on=["one"]),
        counting("three", tmp_path / "three", depends_on=["two"]),
    ]
    build = run_plan(c, make_plan("retried-in-a-chain", steps), buildable)
    wait_status(build, "passed", timeout=60)
    assert [runs(tmp_path / k) for k in ("one", "two", "three")] == [1, 3, 1]
    twos = BuildTarget.objects.filter(build=build, step_key="two").order_by("step_attempt")
    assert [(t.status, t.attempt) for t in twos] == [("failed", 1), ("failed", 1), ("passed", 1)]
    time.sleep(0.5)
    assert deliveries([worker], "workers.tasks.run_target") == 1
    settled_once(build)
    assert_clean(build)


def test_a_step_failing_for_good_in_a_chain_fails_the_build_once(cluster, buildable, tmp_path):
    c = cluster()
    c.worker(queues="engine,targets")
    steps = [
        counting("one", tmp_path / "one"),
        counting("two", tmp_path / "two", passes_on=99, depends_on=["one"]),
        counting("three", tmp_path / "three", depends_on=["two"]),
    ]
    build = run_plan(c, make_plan("failing-in-a-chain", steps), buildable)
    wait_status(build, "failed", timeout=60)
    assert [runs(tmp_path / k) for k in ("one", "two", "three")] == [1, 1, 0]
    assert not BuildTarget.objects.filter(build=build, step_key="three").exists()
    settled_once(build)
    assert not monitor.violations(), monitor.violations()


# -- many chains racing queued updates and messages (the busy lock) -----------------------

WAITING_CHAIN = [
    {"key": "one", "step_type": "sleep", "config": {"seconds": 0}},
    {"key": "two", "step_type": "sleep", "config": {"seconds": 0}, "depends_on": ["one"]},
    {
        "key": "three",
        "step_type": "sleep",
        "config": {"seconds": 0},
        "wait_for_message": True,
        "depends_on": ["two"],
    },
    {"key": "four", "step_type": "sleep", "config": {"seconds": 0}, "depends_on": ["three"]},
    {"key": "five", "step_type": "sleep", "config": {"seconds": 0}, "depends_on": ["four"]},
]


def test_chains_racing_updates_and_messages_lose_no_finish(celery_workers, buildable, monitored):
    """15 chains whose middle step waits for a message: while they run, updates are queued
    for every build and ``work`` messages sent to every running target, so the workers'
    own passes find the lock busy again and again, and each waiting target is sent its
    ``pass`` as soon as it waits. Every build passes; each target is claimed and settled
    once; no verdict is left unconsumed."""
    builds = start_builds(WAITING_CHAIN, 15, buildable)
    errors = []

    def race(done: threading.Event) -> None:
        try:
            while not done.is_set():
                for build in builds:
                    dispatch.update_build(build.pk)
                for target in BuildTarget.objects.filter(
                    build__in=builds, status__in=["building", "waiting"]
                ):
                    kind = "pass" if target.status == "waiting" else "work"
                    try:
                        engine.receive_message(target.phid, kind)
                    except (engine.MessageRefused, engine.InvalidMessage):
                        pass  # it moved on meanwhile
                done.wait(0.005)
        except Exception as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)
        finally:
            connection.close()

    statuses = complete_while(race, builds)
    assert not errors, errors
    assert set(statuses.values()) == {"passed"}
    for build in builds:
        targets = list(build.targets.all())
        assert len(targets) == len(WAITING_CHAIN)
        assert [t.attempt for t in targets] == [1] * len(targets), "a target was claimed twice"
        settled_once(build)
        assert not BuildMessage.objects.filter(
            build=build, is_consumed=False, type__in=BuildMessage.VERDICTS
        ).exists()
    assert not monitor.violations(), monitor.violations()


# -- Redis loses its scripts ---------------------------------------------------------------


def test_the_lock_scripts_load_again_after_redis_flushes_them(own_redis, settings):
    """``_ENTER``/``_LEAVE``/``_RELEASE`` are run by EVALSHA: after ``SCRIPT FLUSH`` (or a
    restart) redis-py must load them again rather than fail every pass."""
    settings.HARBOR_QUEUE_PREFIX = f"scripts{time.time_ns()}"
    passes = []
    assert locks.run_exclusively(7, passes.append, lambda s: None)
    redis.Redis.from_url(own_redis.url).script_flush()
    assert locks.run_exclusively(7, passes.append, lambda s: None)
    own_redis.stop()
    own_redis.start()  # empty: the scripts are gone, the pool reconnects
    assert locks.run_exclusively(7, passes.append, lambda s: None)
    assert passes == [7, 7, 7]


def test_the_lock_scripts_run_when_redis_loses_them_again_while_reloading(
    own_redis, settings, monkeypatch
):
    """redis-py reloads a lost script once, then EVALSHAs it again: a second flush between
    the two must not fail the pass (a NoScriptError is no outage error: nobody retries)."""
    settings.HARBOR_QUEUE_PREFIX = f"scripts{time.time_ns()}"
    load = redis.Redis.script_load

    def load_then_lose(client, script):
        sha = load(client, script)
        client.script_flush()
        return sha

    monkeypatch.setattr(redis.Redis, "script_load", load_then_lose)
    passes = []
    assert locks.run_exclusively(8, passes.append, lambda s: None)
    assert passes == [8]


def test_a_chain_runs_while_redis_flushes_its_scripts(cluster, own_redis, buildable, tmp_path):
    c = cluster(broker_url=own_redis.url)
    c.worker(queues="engine,targets", concurrency=2)
    build = engine.start_build(make_plan("script-flush", chain(12, tmp_path)), buildable)
    flusher = redis.Redis.from_url(own_redis.url)
    done = threading.Event()

    def flush():
        while not done.is_set():
            flusher.script_flush()
            done.wait(0.002)

    thread = threading.Thread(target=flush, daemon=True)
    thread.start()
    try:
        c.send_recorded()
        try:
            wait_status(build, "passed", timeout=60)
        except AssertionError:
            errors = [line for w in c.workers for line in w.output if "Error" in line]
            raise AssertionError("".join(errors[-10:])) from None
    finally:
        done.set()
        thread.join(5)
    assert [runs(tmp_path / f"s{i:02}") for i in range(12)] == [1] * 12
    settled_once(build)
    assert_clean(build)


# -- the database drops the pass that carries a finish -----------------------------------


@pytest.mark.parametrize("release", ["before", "after"])
def test_a_connection_dropped_in_the_pass_carrying_a_finish_keeps_the_finish(
    cluster, buildable, tmp_path, release
):
    """The worker's pass finishes ``last`` and, the build passing, waits for the
    buildable's row; its backend is terminated there. The pass rolls back with the finish
    in it; the finish is then made alone, and the build passes without ``last`` running
    again (its lease is short: a lost finish would show as a second run). The holder lets
    go of the row before or after the finish alone is attempted."""
    c = cluster()
    c.worker(queues="engine,targets", beat=True)
    steps = [
        counting("first", tmp_path / "first"),
        counting("last", tmp_path / "last", depends_on=["first"]),
    ]
    build = engine.start_build(make_plan(f"dropped-{release}", steps), buildable)
    with RowHolder("builds_buildable", buildable.pk) as holder:
        c.send_recorded()
        pid = holder.blocked_pid()
        last = BuildTarget.objects.get(build=build, step_key="last")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        if release == "after":
            time.sleep(1)
    wait_status(build, "passed", timeout=LEASE + TICK + BOUND + SLACK)
    time.sleep(LEASE + TICK + BOUND)  # a lost finish would have the step run again by now
    last.refresh_from_db()
    assert (last.status, last.attempt, last.lost_claims) == ("passed", 1, 0)
    assert [runs(tmp_path / k) for k in ("first", "last")] == [1, 1]
    settled_once(build)
    assert_clean(build)


def test_a_connection_dropped_after_a_pass_handed_over_a_claim_runs_each_step_once(
    cluster, buildable, tmp_path
):
    """``grouped`` (in a concurrency group) finishes; the worker's pass finishes it, creates
    ``next`` and claims it for the worker, then blocks releasing the group's slot, and its
    backend is terminated. The claim rolls back with the pass: the worker must not run
    ``next`` on it. The finish is made alone, the task retries, and ``next`` is queued by
    the pass that follows; each step runs once, each target is claimed once."""
    group = f"handover-{time.time_ns()}"
    c = cluster()
    c.worker(queues="engine,targets", beat=True)
    concurrency = {"concurrency": {"group": group, "limit": 1}}
    steps = [
        counting("grouped", tmp_path / "grouped", then="sleep 1", config=concurrency),
        counting("next", tmp_path / "next", depends_on=["grouped"]),
    ]
    build = run_plan(c, make_plan("dropped-after-a-claim", steps), buildable)
    wait_for(
        lambda: BuildTarget.objects.filter(build=build, status="building").exists(),
        timeout=SLACK,
    )
    with RowHolder("builds_concurrencygroup", group, column="name") as holder:
        pid = holder.blocked_pid()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_status(build, "passed", timeout=LEASE + TICK + BOUND + SLACK)
    time.sleep(LEASE + TICK + BOUND)  # a lost finish would have a step run again by now
    assert [runs(tmp_path / k) for k in ("grouped", "next")] == [1, 1]
    # A step started on a claim that rolled back fails before its command runs (its target
    # row is gone), so the counts above cannot see it: the workers' logs can.
    started = [line for w in c.workers for line in w.output if "running step next" in line]
    assert len(started) == 1, started
    targets = BuildTarget.objects.filter(build=build).order_by("step_key")
    assert [(t.step_key, t.attempt, t.lost_claims) for t in targets] == [
        ("grouped", 1, 0),
        ("next", 1, 0),
    ]
    settled_once(build)
    assert_clean(build)


def test_a_frozen_worker_whose_handed_over_claim_was_taken_over_changes_nothing(
    cluster, buildable, tmp_path
):
    """The worker running ``two`` (handed over by its pass) is frozen past the lease; the
    repair has another worker claim ``two`` again and finish the build. Thawed, the first
    worker's step is stopped, its finish discarded, and its pass changes nothing: ``three``
    ran once, every target completed once."""
    c = cluster()
    frozen = c.worker(queues="engine,targets")
    steps = [
        counting("one", tmp_path / "one"),
        counting("two", tmp_path / "two", then="sleep 2", depends_on=["one"]),
        counting("three", tmp_path / "three", depends_on=["two"]),
    ]
    build = run_plan(c, make_plan("frozen-holding-a-claim", steps), buildable)
    wait_building(build, "two")
    os.killpg(frozen.process.pid, signal.SIGSTOP)
    try:
        c.worker(queues="engine,targets", beat=True)
        wait_status(build, "passed", timeout=LEASE + TICK + BOUND + 2 + SLACK)
    finally:
        os.killpg(frozen.process.pid, signal.SIGCONT)
    wait_for(
        lambda: any(
            "discarded" in line or "run_target" in line and "succeeded" in line
            for line in frozen.output
        ),
        timeout=SLACK,
    )
    time.sleep(LEASE)
    two = BuildTarget.objects.get(build=build, step_key="two")
    assert (two.status, two.attempt, two.lost_claims) == ("passed", 2, 1)
    assert [runs(tmp_path / k) for k in ("one", "two", "three")] == [1, 2, 1]
    assert Build.objects.get(pk=build.pk).status == "passed"
    settled_once(build)
    assert_clean(build)


def _chain_with_a_dead_redis_holder(c, buildable, tmp_path):
    """A worker and a build of three counting steps in a chain, ``two`` running (for a
    second more) when its Redis lock is taken by a holder that then dies (the key only
    lapses)."""
    worker = c.worker(queues="engine,targets")
    steps = [
        counting("one", tmp_path / "one"),
        counting("two", tmp_path / "two", then="sleep 1", depends_on=["one"]),
        counting("three", tmp_path / "three", depends_on=["two"]),
    ]
    build = run_plan(c, make_plan("dead-holder", steps), buildable)
    wait_building(build, "two")
    locks.client().set(locks.lock_key(build.pk), "a-dead-holder", px=LEASE * 1000)
    return worker, build


def test_a_finish_made_while_a_pass_holds_the_build_is_read_by_a_later_pass(
    cluster, buildable, tmp_path
):
    """A pass holds the build's row and its Redis lock (its holder then dies: the key only
    lapses) while ``two`` finishes: the worker cannot pass, so it commits the finish alone,
    marks the build dirty and schedules the fallback update, whose pass reads the finish and
    queues ``three``. Each step runs once; nothing is handed over after the busy lock."""
    worker, build = _chain_with_a_dead_redis_holder(cluster(), buildable, tmp_path)
    with RowHolder("builds_build", build.pk, strength="NO KEY UPDATE"):
        two = wait_for(
            lambda: BuildTarget.objects.filter(
                build=build, step_key="two", status="passed"
            ).first(),
            timeout=SLACK,
        )
        assert locks.client().exists(locks.dirty_key(build.pk)), "the finish left no dirty mark"
    assert not BuildTarget.objects.filter(build=build, step_key="three").exists()
    wait_status(build, "passed", timeout=LEASE + SLACK)
    assert [runs(tmp_path / k) for k in ("one", "two", "three")] == [1, 1, 1]
    assert two.attempt == 1
    time.sleep(0.5)  # a late delivery, if any, would be logged by now
    assert deliveries([worker], "workers.tasks.update_build") == 1  # the fallback
    assert deliveries([worker], "workers.tasks.run_target") == 2  # one's, three's
    settled_once(build)
    assert_clean(build)


def test_a_dead_redis_lock_holder_does_not_delay_a_build_whose_row_is_free(
    cluster, buildable, tmp_path
):
    """The build's Redis lock is held by a holder that died between passes (the key only
    lapses; the build's row is free) while ``two`` finishes: the worker passes at once,
    without the lock, and runs ``three`` itself; no fallback update waits for the lease."""
    worker, build = _chain_with_a_dead_redis_holder(cluster(), buildable, tmp_path)
    wait_status(build, "passed", timeout=LEASE + SLACK)
    assert [runs(tmp_path / k) for k in ("one", "two", "three")] == [1, 1, 1]
    assert not locks.client().exists(locks.dirty_key(build.pk))
    time.sleep(0.5)  # a late delivery, if any, would be logged by now
    assert deliveries([worker], "workers.tasks.update_build") == 0
    assert deliveries([worker], "workers.tasks.run_target") == 1  # one's; the rest handed over
    settled_once(build)
    assert_clean(build)
