"""Crashes and lost updates: killed workers, a stalled lock holder, Redis flushed or
restarted, database connections dropped. The build still reaches its right status without
anyone's help; the repair task (Celery beat, ``HARBOR_REPAIR_BOUND``) gives the bound.

Tests with workers run them on queues (and, for the Redis tests, a ``redis-server``) of
their own (``Cluster``), so the session's shared workers never take their tasks; the test
process sends its follow-ups there too. Bounds are small: HARBOR_REPAIR_BOUND=2 (beat runs
the repair every second), HARBOR_TARGET_LEASE=2, HARBOR_BUILD_LOCK_LEASE=2.
"""

import itertools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from unittest import mock

import psycopg2
import pytest
import redis
from celery import Celery
from django.conf import settings
from django.db import connection

from builds import engine, locks
from builds.engine import passes
from builds.models import Build, BuildMessage, BuildTarget, StatusEvent
from tests.conftest import make_plan
from tests.engine.conftest import pending_build
from tests.interleavings import monitor
from tests.workers import WorkerProcess, wait_for
from workers import tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]

BOUND = 2  # HARBOR_REPAIR_BOUND for the test workers, seconds
LEASE = 2  # HARBOR_TARGET_LEASE and HARBOR_BUILD_LOCK_LEASE, seconds
TICK = 1  # how often beat runs the repair (max(BOUND / 3, 1))
SLACK = 10  # a loaded 2-core machine: task hand-offs, process start-up
_clusters = itertools.count()


class Cluster:
    """Queues (and optionally a broker) of one test's own, with workers on them.

    While ``sending`` is False the engine's follow-ups in the test process are recorded, not
    sent (to set up a state by hand); then they go to this cluster's queues.
    """

    def __init__(self, monkeypatch, tmp_path, broker_url: str | None = None):
        self.prefix = f"harborcrash{os.getpid()}x{next(_clusters)}"
        self.broker_url = broker_url or settings.REDIS_URL
        self.tmp_path = tmp_path
        self.app = Celery("harbor-crash-tests", broker=self.broker_url, set_as_current=False)
        self.sending = False
        self.recorded: list[tuple] = []
        self.workers: list[WorkerProcess] = []
        monkeypatch.setattr("builds.engine.dispatch.update_build", self.update_build)
        monkeypatch.setattr("builds.engine.dispatch.run_targets", self.run_targets)
        # The build's Redis keys are named by the prefix: ours, so our workers clear our marks.
        monkeypatch.setattr(settings, "HARBOR_QUEUE_PREFIX", self.prefix)

    def update_build(self, build_id: int, countdown: float = 0) -> None:
        self._send("update_build", build_id, "engine", countdown)

    def run_targets(
        self, target_ids: list[int], countdown: float = 0, reclaim: bool = False
    ) -> None:
        if self.sending:
            locks.mark_targets_queued(target_ids, countdown)
        for target_id in target_ids:
            self._send("run_target", target_id, "targets", countdown)

    def send_recorded(self) -> None:
        """Start sending, and send the follow-ups recorded so far (a start's first targets,
        say), as the commits that asked for them would have."""
        self.sending = True
        recorded, self.recorded = self.recorded, []
        for task, object_id in recorded:
            if task == "run_target":
                self.run_targets([object_id])
            else:
                engine.request_update(object_id)

    def _send(self, task: str, object_id: int, queue: str, countdown: float) -> None:
        if not self.sending:
            self.recorded.append((task, object_id))
            if task == "update_build":
                # Never sent: clear its queued mark, so the test's next request sends one.
                locks.clear_update_request(object_id)
            return
        self.app.send_task(
            f"workers.tasks.{task}",
            args=(object_id,),
            queue=f"{self.prefix}.{queue}",
            countdown=countdown or None,
        )

    def worker(
        self, queues: str = "engine,targets", beat: bool = False, concurrency: int = 1, **env: str
    ):
        """Start a worker on this cluster's ``queues`` (and beat, running the repair), with
        ``env`` added to its environment."""
        worker = WorkerProcess(
            concurrency=concurrency,
            HARBOR_QUEUE_PREFIX=self.prefix,
            REDIS_URL=self.broker_url,
            HARBOR_REPAIR_BOUND=str(BOUND),
            HARBOR_TARGET_LEASE=str(LEASE),
            HARBOR_BUILD_LOCK_LEASE=str(LEASE),
            **env,
        )
        # WorkerProcess names its queues after the test process's prefix: use ours.
        worker.command[worker.command.index("-Q") + 1] = ",".join(
            f"{self.prefix}.{q}" for q in queues.split(",")
        )
        if beat:
            worker.command += ["-B", "-s", str(self.tmp_path / f"beat-{len(self.workers)}")]
        self.workers.append(worker.start())
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.app.close()


@pytest.fixture
def cluster(monkeypatch, tmp_path, monitored):
    made = []

    def make(**kwargs) -> Cluster:
        made.append(Cluster(monkeypatch, tmp_path, **kwargs))
        return made[-1]

    yield make
    for c in made:
        c.close()


def one_step_plan(name: str, **step):
    return make_plan(name, [{"key": "ci", "step_type": "sleep", **step}])


def waiting_build_with_pass(buildable) -> tuple[Build, BuildMessage]:
    """In-process: a build whose one target waits and has an unconsumed ``pass``."""
    build = engine.start_build(
        one_step_plan(f"waiting-{time.time_ns()}", wait_for_message=True), buildable
    )
    target = BuildTarget.objects.get(build=build)
    engine.finish_target(engine.begin_target(target.pk))
    # Left for the test's own pass: the receiving process would otherwise decide it now.
    with mock.patch("builds.engine.messages.update_after_commit"):
        message = engine.receive_message(target.phid, "pass").message
    return build, message


def wait_status(build: Build, status: str, timeout: float) -> float:
    """Wait for the build to reach ``status``; return the seconds it took."""
    began = time.monotonic()
    wait_for(
        lambda: Build.objects.get(pk=build.pk).status == status,
        timeout=timeout,
        interval=0.1,
        message=f"build {build.pk} did not reach {status} within {timeout} s",
    )
    return time.monotonic() - began


def assert_clean(build: Build) -> None:
    assert not BuildMessage.objects.filter(
        build=build, is_consumed=False, type__in=BuildMessage.VERDICTS
    ).exists()
    settled = StatusEvent.objects.filter(build=build, target__isnull=False, to_status="passed")
    assert settled.count() == BuildTarget.objects.filter(build=build, status="passed").count()
    assert not monitor.violations(), monitor.violations()


class RowHolder:
    """A separate PostgreSQL connection holding one row's lock (``table`` where ``column`` =
    ``value``, ``FOR <strength>``: ``NO KEY UPDATE`` to hold a build as a pass does), so
    that a pass that must write that row blocks inside its transaction (no test hook in the
    engine). ``blocked_pid`` finds the backend that this lock blocks (and, if ``waiting`` is
    given, whose statement matches that LIKE pattern): by the lock, not the statement's
    text, as a named read's text is an ``EXECUTE`` of a statement prepared earlier in its
    session."""

    def __init__(
        self, table: str, value, column: str = "id", waiting: str = "", strength: str = "UPDATE"
    ):
        db = connection.settings_dict
        self.conn = psycopg2.connect(
            dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"]
        )
        self.table = table
        self.waiting = waiting
        with self.conn.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {table} WHERE {column} = %s FOR {strength}", [value])
            assert cursor.rowcount == 1, f"no {table} row {value}"

    def blocked_pid(self, timeout: float = 20) -> int:
        """The pid of the backend waiting for our lock (the pass), once it waits. Asked on
        the test's own autocommit connection: within a transaction pg_stat_activity would
        show one snapshot."""

        def find():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND %s = ANY(pg_blocking_pids(pid)) AND query LIKE %s",
                    [self.conn.get_backend_pid(), self.waiting or "%"],
                )
                row = cursor.fetchone()
                return row[0] if row else None

        return wait_for(find, timeout=timeout, message=f"no pass blocked on the {self.table} row")

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()

    def __enter__(self) -> "RowHolder":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()  # also when the test fails, so teardown is never blocked


# -- the repair task, in process ---------------------------------------------------------


@pytest.mark.django_db
def test_the_repair_finds_exactly_what_lost_updates_leave(buildable, monkeypatch, settings):
    monkeypatch.setattr("builds.engine.dispatch.update_build", lambda *a, **k: None)
    monkeypatch.setattr("builds.engine.dispatch.run_targets", lambda *a, **k: None)
    lost_verdict, _ = waiting_build_with_pass(buildable)
    quiet = engine.start_build(one_step_plan("quiet", wait_for_message=True), buildable)
    engine.finish_target(engine.begin_target(BuildTarget.objects.get(build=quiet).pk))
    lost_finish = engine.start_build(one_step_plan("plain"), buildable)
    engine.finish_target(engine.begin_target(BuildTarget.objects.get(build=lost_finish).pk))
    settings.HARBOR_TARGET_LEASE = -1  # this claim's lease is already over
    expired = engine.start_build(one_step_plan("expired"), buildable)
    expired_target = BuildTarget.objects.get(build=expired)
    assert engine.begin_target(expired_target.pk) is not None
    # Left pending by a Harbor that queued first passes, which it lost.
    never_started = pending_build(one_step_plan("never"), buildable)
    lost_start = engine.start_build(one_step_plan("lost-start"), buildable)  # its run_target lost
    lost_start_target = BuildTarget.objects.get(build=lost_start)

    assert engine.find_lost_work(60).build_ids == []  # nothing is older than the bound yet
    lost = engine.find_lost_work(0)
    assert sorted(lost.build_ids) == sorted([lost_verdict.pk, lost_finish.pk, never_started.pk])
    assert sorted(lost.target_ids) == sorted([expired_target.pk, lost_start_target.pk])

    sent = []
    monkeypatch.setattr(
        "builds.engine.dispatch.request_update", lambda pk: sent.append(("update", pk))
    )
    monkeypatch.setattr(
        "builds.engine.dispatch.run_targets",
        lambda pks, reclaim=False: sent.extend(("run", pk) for pk in pks),
    )
    settings.HARBOR_REPAIR_BOUND = 0
    tasks.repair_builds()
    assert sorted(sent) == sorted(
        [
            ("update", lost_verdict.pk),
            ("update", lost_finish.pk),
            ("update", never_started.pk),
            ("run", expired_target.pk),
            ("run", lost_start_target.pk),
        ]
    )
    # Handed back to the normal path, each is settled by it.
    for build in (lost_verdict, lost_finish):
        engine.update_build(build.pk)
        assert Build.objects.get(pk=build.pk).status == "passed"


# -- killed workers ----------------------------------------------------------------------


def test_a_worker_killed_mid_step_is_replaced_after_its_lease_without_help(cluster, buildable):
    c = cluster()
    # Both target workers are up before the step starts (one is the replacement): started
    # after it, a slow start-up on a loaded machine let the step finish before the kill.
    target_workers = [c.worker(queues="targets"), c.worker(queues="targets")]
    c.worker(queues="engine", beat=True)
    build = engine.start_build(one_step_plan("slow", config={"seconds": 4}), buildable)
    c.send_recorded()
    target = wait_for(lambda: BuildTarget.objects.filter(build=build, status="building").first())
    victim = wait_for(  # its log line may reach us after the claim does
        lambda: next((w for w in target_workers if _received(w, "run_target")), None)
    )
    time.sleep(0.5)
    running = BuildTarget.objects.get(pk=target.pk)
    assert (running.status, running.attempt) == ("building", 1)
    lease_held_until = running.lease_expires
    victim.kill()
    took = wait_status(build, "passed", timeout=LEASE + TICK + BOUND + 3 + SLACK)
    target.refresh_from_db()
    assert (target.attempt, target.lost_claims) == (2, 1)
    reclaim = StatusEvent.objects.get(target=target, detail__startswith="claimed again")
    assert reclaim.at >= lease_held_until, "the target ran again while its lease held"
    assert_clean(build)
    print(f"killed mid-step: passed {took:.1f} s after the kill")


def _received(worker: WorkerProcess, task: str) -> bool:
    return any(f"tasks.{task}[" in line and " received" in line for line in worker.output)


def test_a_worker_killed_mid_pass_leaves_nothing_lost(cluster, buildable):
    c = cluster()
    build, message = waiting_build_with_pass(buildable)
    victim = c.worker(queues="engine")
    with RowHolder("builds_buildmessage", message.pk, waiting="UPDATE%buildmessage%") as holder:
        c.sending = True
        engine.request_update(build.pk)
        holder.blocked_pid()  # the victim's pass holds the build row, waits for the message
        victim.kill()
    # Released: the orphaned backend finishes its statement, cannot reply, and rolls back.
    c.worker(queues="engine,targets", beat=True)
    took = wait_status(build, "passed", timeout=BOUND + TICK + LEASE + SLACK)
    message.refresh_from_db()
    assert message.is_consumed and message.outcome == "target passed"
    assert_clean(build)
    print(f"killed mid-pass: passed {took:.1f} s after the replacement started")


def test_a_database_connection_dropped_mid_pass_loses_nothing(cluster, buildable):
    c = cluster()
    build, message = waiting_build_with_pass(buildable)
    c.worker(queues="engine")
    with RowHolder("builds_buildmessage", message.pk, waiting="UPDATE%buildmessage%") as holder:
        c.sending = True
        engine.request_update(build.pk)
        pid = holder.blocked_pid()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_status(build, "passed", timeout=SLACK)  # the task retries on a new connection
    message.refresh_from_db()
    assert message.is_consumed
    assert_clean(build)


# -- a lock holder that stalls past its lease --------------------------------------------


def test_a_stalled_lock_holder_cannot_overwrite_the_next_pass(
    monitored, buildable, monkeypatch, settings
):
    monkeypatch.setattr("builds.engine.dispatch.update_build", lambda *a, **k: None)
    monkeypatch.setattr("builds.engine.dispatch.run_targets", lambda *a, **k: None)
    settings.HARBOR_BUILD_LOCK_LEASE = 2
    build, message = waiting_build_with_pass(buildable)
    gates = {}  # thread -> (paused, resume)
    original = passes.apply_commands

    def stall(*args, **kwargs):
        result = original(*args, **kwargs)
        gate = gates.get(threading.current_thread())
        if gate:
            gate[0].set()
            gate[1].wait(20)
        return result

    monkeypatch.setattr(passes, "apply_commands", stall)

    def holder(name: str) -> threading.Thread:
        def run():
            try:
                locks.run_exclusively(build.pk, engine.update_build, lambda s: None)
            finally:
                connection.close()

        thread = threading.Thread(target=run, name=name, daemon=True)
        gates[thread] = (threading.Event(), threading.Event())
        return thread

    stale = holder("stale")
    stale.start()
    assert gates[stale][0].wait(10)  # holds the Redis lock and the build row; read the inbox
    time.sleep(settings.HARBOR_BUILD_LOCK_LEASE + 0.3)  # its Redis lease expires
    r = locks.client()
    assert r.get(locks.lock_key(build.pk)) is None
    # The fresh holder's lease must outlast what follows, however slow the machine.
    settings.HARBOR_BUILD_LOCK_LEASE = 30
    fresh = holder("fresh")
    fresh.start()  # takes the Redis lock, then waits for the build row in PostgreSQL
    token = wait_for(lambda: r.get(locks.lock_key(build.pk)))
    gates[stale][1].set()  # the stale pass resumes, commits, fails to release the new lock
    stale.join(10)
    assert r.get(locks.lock_key(build.pk)) == token, "the stale holder released the new lock"
    assert gates[fresh][0].wait(10)
    gates[fresh][1].set()
    fresh.join(10)
    engine.update_build(build.pk)
    build.refresh_from_db()
    assert build.status == "passed"
    assert BuildTarget.objects.filter(build=build).count() == 1
    message.refresh_from_db()
    assert message.is_consumed
    assert_clean(build)


# -- Redis flushed or restarted ----------------------------------------------------------


class OwnRedis:
    """A ``redis-server`` of this test's own on a free port, without persistence."""

    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "OwnRedis":
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), timeout=10, message="redis-server did not start")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture
def own_redis(settings):
    server = OwnRedis().start()
    settings.REDIS_URL = server.url  # the test process's lock client, if it makes one
    locks._client = None
    yield server
    server.stop()
    locks._client = None


@pytest.mark.parametrize("loss", ["flushed", "restarted"])
def test_messages_pending_when_redis_loses_its_data_are_not_lost(
    cluster, own_redis, buildable, loss
):
    c = cluster(broker_url=own_redis.url)
    c.worker(queues="engine,targets", beat=True, concurrency=2)
    plan = one_step_plan(f"redis-{loss}", wait_for_message=True)
    c.sending = True
    builds = [engine.start_build(plan, buildable) for _ in range(10)]
    wait_for(
        lambda: BuildTarget.objects.filter(build__in=builds, status="waiting").count() == 10,
        timeout=SLACK,
    )
    if loss == "flushed":
        c.workers[0].stop()  # no consumer: the updates the messages fire stay queued
    else:
        own_redis.stop()  # the messages' updates cannot even be sent
    for target in BuildTarget.objects.filter(build__in=builds):
        # Stored and answered as accepted even with the broker down: the update request
        # after the commit fails (logged), and the repair finds the message.
        receipt = engine.receive_message(target.phid, "pass")
        assert receipt.created
    if loss == "flushed":
        redis.Redis.from_url(own_redis.url).flushall()
        c.worker(queues="engine,targets", beat=True, concurrency=2)
    else:
        own_redis.start()  # empty: no queued task, lock or mark survived
    for build in builds:
        wait_status(build, "passed", timeout=BOUND + TICK + SLACK)
        assert_clean(build)


def test_a_worker_survives_redis_restarting_under_a_running_target(cluster, own_redis, buildable):
    """The worker holds an unacknowledged task (``acks_late``) when its broker goes away.
    Celery 5.7.0 then died ("Unrecoverable error: AttributeError ... 'hostname'") while
    closing the lost connection, so nothing ran until someone restarted it."""
    c = cluster(broker_url=own_redis.url)
    worker = c.worker(queues="engine,targets", beat=True, concurrency=2)
    c.sending = True
    build = engine.start_build(
        one_step_plan("redis-under-a-step", config={"seconds": 3}), buildable
    )
    wait_for(
        lambda: BuildTarget.objects.filter(build=build, status="building").exists(),
        timeout=SLACK,
    )
    own_redis.stop()
    time.sleep(0.5)
    own_redis.start()
    wait_for(
        lambda: (
            worker.process.poll() is not None or Build.objects.get(pk=build.pk).status == "passed"
        ),
        timeout=LEASE + BOUND + TICK + SLACK,
        message=f"build {build.pk} did not pass",
    )
    assert worker.process.poll() is None, "the worker died:\n" + "".join(worker.output[-30:])
    assert_clean(build)
