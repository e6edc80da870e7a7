"""The Redis lock hand-off (builds/locks.py) with real Redis, driven step by step.

No database: the pass is a recorder, so these tests isolate the lock and dirty-mark
protocol of docs/design.md §3.6. Build ids are made unique per test run, so keys never collide
with another run sharing the Redis database.
"""

import itertools
import os
import threading

import pytest

from builds import locks

_ids = itertools.count()


@pytest.fixture
def build_id(settings):
    settings.HARBOR_BUILD_LOCK_LEASE = 5
    build_id = 10**12 + os.getpid() * 1000 + next(_ids)
    yield build_id
    r = locks.client()
    r.delete(locks.lock_key(build_id), locks.dirty_key(build_id))
    for key in r.scan_iter(f"{locks.lock_key(build_id)}:fallback:*"):
        r.delete(key)


class Holder:
    """A thread running ``run_exclusively`` whose pass (or release) can be held at a gate."""

    def __init__(self, build_id: int):
        self.build_id = build_id
        self.passes = 0
        self.scheduled: list[float] = []
        self.in_pass = threading.Event()
        self.go = threading.Event()
        self.hold_pass = False
        self.result = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def run_pass(self, build_id: int) -> None:
        self.passes += 1
        if self.hold_pass and self.passes == 1:
            self.in_pass.set()
            assert self.go.wait(10)

    def _run(self) -> None:
        self.result = locks.run_exclusively(self.build_id, self.run_pass, self.scheduled.append)


def test_a_mark_set_between_the_holders_last_look_and_its_release_gets_a_pass(
    build_id, monkeypatch
):
    holder = Holder(build_id)
    at_release, release = threading.Event(), threading.Event()
    original = locks._leave

    def held_leave(r, build_id, token):
        if threading.current_thread() is holder.thread and not at_release.is_set():
            at_release.set()
            assert release.wait(10)
        return original(r, build_id, token)

    monkeypatch.setattr(locks, "_leave", held_leave)
    holder.thread.start()
    assert at_release.wait(10)  # the pass is done; the holder is about to release
    other = Holder(build_id)
    other._run()  # a message's update: the lock is busy, so it leaves the mark and returns
    assert other.result is False and other.passes == 0
    release.set()
    holder.thread.join(10)
    assert holder.passes == 2, "the mark set just before the release was lost"
    assert not locks.client().exists(locks.dirty_key(build_id))


def test_callers_finding_the_lock_busy_schedule_one_fallback_per_lease(build_id):
    holder = Holder(build_id)
    holder.hold_pass = True
    holder.thread.start()
    assert holder.in_pass.wait(10)
    others = [Holder(build_id) for _ in range(5)]
    for other in others:
        other._run()
    scheduled = [delay for other in others for delay in other.scheduled]
    assert len(scheduled) == 1, scheduled
    assert 0 < scheduled[0] <= 5 + 0.5  # when the holder's lease would expire
    holder.go.set()
    holder.thread.join(10)
    assert holder.passes == 2  # the marks the others left got one more pass, not five


def test_a_pass_that_raises_releases_the_lock_and_leaves_the_stall_signal(build_id):
    r = locks.client()
    r.set(locks.engine_waiting_key(), 1.0)

    def failing_pass(build_id: int) -> None:
        raise RuntimeError("the pass failed")

    try:
        with pytest.raises(RuntimeError):
            locks.run_exclusively(build_id, failing_pass, lambda seconds: None)
        assert r.get(locks.lock_key(build_id)) is None, "the lock outlived the failed pass"
        # A failing pass is no sign that the engine works: /healthz must still see the wait.
        assert r.get(locks.engine_waiting_key()) is not None
    finally:
        r.delete(locks.engine_waiting_key())


def test_a_holder_whose_lease_lapsed_does_not_release_the_next_holders_lock(build_id):
    r = locks.client()

    def pass_outliving_its_lease(build_id: int) -> None:
        # The lease lapses and another worker takes the lock before this pass ends.
        r.set(locks.lock_key(build_id), "next-holder")

    locks.run_exclusively(build_id, pass_outliving_its_lease, lambda seconds: None)
    assert r.get(locks.lock_key(build_id)) == b"next-holder"


def test_a_first_pass_runs_in_place_of_the_pass_when_the_lock_is_free(build_id):
    ran, busy = [], []
    locks.run_exclusively(
        build_id,
        lambda b: ran.append("pass"),
        lambda seconds: None,
        first_pass=lambda b: ran.append("first"),
        if_busy=lambda: busy.append(True),
    )
    assert ran == ["first"] and busy == []


def test_with_the_lock_busy_the_first_pass_write_commits_alone_and_marks_the_build_after(
    build_id,
):
    holder = Holder(build_id)
    holder.hold_pass = True
    holder.thread.start()
    assert holder.in_pass.wait(10)
    r = locks.client()
    seen_at_write = []

    def commit_alone() -> None:
        # The holder may have cleared the mark meanwhile (its pass ran before this write):
        # the mark that gets the write its pass must come after it.
        r.delete(locks.dirty_key(build_id))
        seen_at_write.append(True)

    other_first = []
    result = locks.run_exclusively(
        build_id,
        lambda b: None,
        lambda seconds: None,
        first_pass=lambda b: other_first.append(b),
        if_busy=commit_alone,
    )
    assert result is False and other_first == [] and seen_at_write == [True]
    assert r.exists(locks.dirty_key(build_id)), "the build was not marked after the write"
    holder.go.set()
    holder.thread.join(10)
    assert holder.passes == 2, "the holder did not pass again for the write"
