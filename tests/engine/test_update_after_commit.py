"""The process that commits a verdict or a command runs the build's pass itself once it
commits (``engine.update_after_commit``), on real Redis: the build is decided
before the sender is answered, with no ``update_build`` queued; with a pass under way, the
pass is left to the Redis lock's holder, or queued; a pass that cannot run leaves an update
queued instead.
"""

import threading
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection, transaction

from builds import locks
from builds.models import Build, BuildMessage
from tests.engine.conftest import waiting_step
from tests.interleavings.harness import Dispatched
from tests.interleavings.test_stale_pass import lock_waiters

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch) -> Dispatched:
    """The follow-up tasks the engine queued (recorded instead of sent)."""
    return Dispatched().install(monkeypatch)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a call and what it left to run on commit, as a real commit runs it."""

    def call(action):
        with django_capture_on_commit_callbacks(execute=True):
            return action()

    return call


def _waiting(start, key="ci"):
    driver = start([waiting_step(key)])
    driver.run(key)
    locks.clear_update_request(driver.build.pk)
    return driver


def test_a_verdicts_sender_decides_the_build_before_it_is_answered(start, queued, committed):
    driver = _waiting(start)
    receipt = committed(lambda: driver.send("ci", "pass"))
    receipt.message.refresh_from_db()
    assert receipt.message.is_consumed
    assert driver.target("ci").status == "passed"
    assert driver.refresh().status == "passed"
    assert queued.updates == []
    assert not locks.update_request_queued(driver.build.pk)


def test_a_commands_sender_applies_it_before_it_is_answered(start, queued, committed):
    driver = _waiting(start)
    committed(lambda: driver.command("abort"))
    assert driver.refresh().status == "aborted"
    assert driver.target("ci").status == "aborted"
    assert queued.updates == []


@contextmanager
def _redis_lock_held(build_id: int):
    """The build's Redis lock held by another process for the block."""
    r, key = locks.client(), locks.lock_key(build_id)
    r.set(key, "another process", px=60_000)
    try:
        yield r
    finally:
        r.delete(key)


def test_with_the_redis_lock_held_between_passes_the_sender_passes_itself(start, queued, committed):
    """The Redis lock's holder is not in a pass (the row is free): the sender passes at once,
    without the lock, and asks the holder for nothing."""
    driver = _waiting(start)
    with _redis_lock_held(driver.build.pk) as r:
        committed(lambda: driver.send("ci", "pass"))
        assert not r.exists(locks.dirty_key(driver.build.pk))
    assert driver.target("ci").status == "passed"
    assert driver.refresh().status == "passed"
    assert queued.updates == []


@pytest.mark.django_db(transaction=True)
def test_with_a_pass_under_way_the_verdict_is_left_to_its_holder(
    start, queued, no_tasks, build_row_held
):
    """The holder of the Redis lock is in a pass (it holds the build's row): the sender's own
    pass cannot start, so the holder is asked for another pass (the dirty mark), with a
    fallback update should it die first."""
    driver = _waiting(start)
    before = len(queued.updates)  # the wait's own (its rows are committed here)
    with _redis_lock_held(driver.build.pk) as r:
        build_row_held(driver.build.pk)
        driver.send("ci", "pass")  # autocommit: its pass is tried as the call returns
        assert r.exists(locks.dirty_key(driver.build.pk)), "the holder was not asked for a pass"
    assert driver.target("ci").status == "waiting"
    assert queued.updates[before:] == [driver.build.pk]


def _passes_raise(monkeypatch, error: Exception) -> None:
    """Make every engine pass raise ``error`` before it reads anything."""

    def fail(build_id, before=None, wait=True):
        raise error

    monkeypatch.setattr("builds.engine.updates.run_pass", fail)


def test_a_pass_the_database_refuses_leaves_the_message_and_an_update_queued(
    start, queued, committed, monkeypatch
):
    driver = _waiting(start)
    _passes_raise(monkeypatch, OperationalError("server closed the connection unexpectedly"))
    receipt = committed(lambda: driver.send("ci", "pass"))
    assert BuildMessage.objects.filter(pk=receipt.message.pk, is_consumed=False).exists()
    assert queued.updates == [driver.build.pk]
    assert driver.refresh().status == "building"


def test_a_pass_that_raises_a_bug_errors_the_build_and_still_answers(
    start, queued, committed, monkeypatch
):
    driver = _waiting(start)
    _passes_raise(monkeypatch, ZeroDivisionError("a bug in a pass"))
    receipt = committed(lambda: driver.send("ci", "pass"))
    assert receipt.created
    assert BuildMessage.objects.filter(pk=receipt.message.pk).exists()
    assert driver.refresh().status == "error"


@pytest.mark.django_db(transaction=True)
def test_a_sender_never_waits_for_a_pass_holding_the_build_row(start, queued):
    """A pass that outlived its Redis lease still holds the build's row: the sender's pass
    does not wait for it (its HTTP request would hang) but leaves a queued update."""
    driver = _waiting(start)
    holding, release, waited = threading.Event(), threading.Event(), []

    def stale_pass() -> None:
        try:
            with transaction.atomic():
                Build.objects.select_for_update(no_key=True).get(pk=driver.build.pk)
                holding.set()
                while not release.wait(0.02):
                    if lock_waiters():
                        waited.append(True)
                        return  # let a waiting sender through, so the test fails, not hangs
        finally:
            connection.close()

    holder = threading.Thread(target=stale_pass)
    holder.start()
    assert holding.wait(10)
    before = len(queued.updates)
    driver.send("ci", "pass")  # autocommit: its pass runs as the call returns
    release.set()
    holder.join(10)
    assert waited == [], "the sender's pass waited for the build row"
    assert driver.target("ci").status == "waiting"
    assert queued.updates[before:] == [driver.build.pk]


@pytest.mark.django_db(transaction=True)
def test_senders_refused_a_held_row_queue_one_update_between_them(
    start, queued, no_tasks, build_row_held
):
    """Two verdicts arrive while another transaction holds the build's row and nobody holds
    its Redis lock (another sender's pass, say): each sender takes the lock, is refused the
    row again and asks for an update, but the second finds the first's update queued and not
    started, which will read its message too, and queues none."""
    driver = start([waiting_step("a"), waiting_step("b")])
    driver.run("a")
    driver.run("b")
    locks.clear_update_request(driver.build.pk)
    before = len(queued.updates)  # the waits' own (their rows are committed here)
    build_row_held(driver.build.pk)
    driver.send("a", "pass")  # autocommit: each pass is tried as the call returns
    driver.send("b", "pass")
    assert queued.updates[before:] == [driver.build.pk]
    assert locks.update_request_queued(driver.build.pk)
    assert not locks.client().exists(locks.lock_key(driver.build.pk))
