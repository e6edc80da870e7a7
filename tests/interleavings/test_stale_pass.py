"""A stale engine pass: one that stalls (say its worker was descheduled) after its lock
lease expired, while the build goes on around it.

The model. The Redis lock is only for efficiency; correctness comes from the build row lock
(docs/design.md §3.1). A holder that stalls *before* its transaction starts is harmless: when it
resumes, its pass locks the row and reads the current state, so it is just a later pass
(the harness in test_interleavings.py covers that). The dangerous stall is *inside* the
pass, after it locked the build row and read the inbox: its lease has expired, so another
worker takes the Redis lock and starts a pass. Here that is reproduced for real with three
PostgreSQL connections:

- the stale pass runs ``engine.update_build`` in a thread and is paused at a barrier either
  right after it read the unconsumed messages (``apply_commands`` returned: "after reads")
  or after all its writes, just before commit ("after writes");
- meanwhile the test's own connection runs target events that do not need the build row
  (claim, message): they must not block on the stale pass; a worker's finish locks the
  build row before letting its target wait, so it must block until the stale pass commits
  (checked in ``pg_stat_activity``) and then finish;
- optionally, a second pass starts in another thread during the stall: it must block on the
  build row (checked in ``pg_stat_activity``) until the stale pass commits, then run.

Each order then gets a final pass and is checked: the build and target end ``passed``, the
target settled once, no message consumed twice or lost, no target moved backwards (the
DB-level monitor), one target per step, and one more pass changes nothing. Orders: the
target's three events in each of their orders x every window of the stall over them x a
second pass or not x the two pause points.

Last, two builds of one buildable completing together, the first pass paused while it holds
the buildable's row lock: the buildable must end ``passed``.
"""

import itertools
import threading
import time

import pytest
from django.db import connection

from builds import engine
from builds.engine import passes
from builds.models import Build, BuildMessage, BuildTarget, StatusEvent
from tests.interleavings import monitor
from tests.interleavings.conftest import ORDERS_CHECKED, waiting_plan
from tests.interleavings.harness import Dispatched

pytestmark = pytest.mark.django_db(transaction=True)

TARGET_ORDERS = [("claim", "finish", "msg"), ("claim", "msg", "finish"), ("msg", "claim", "finish")]
WINDOWS = [(i, j) for i, j in itertools.combinations(range(4), 2)]
PAUSE_POINTS = {"after reads": "apply_commands", "after writes": "_update_steps"}


class StalePass:
    """An engine pass in its own thread and connection, paused inside its transaction."""

    def __init__(self, build_id: int):
        self.build_id = build_id
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            engine.update_build(self.build_id)
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            connection.close()

    def start(self) -> None:
        self.thread.start()
        assert self.paused.wait(10), "the stale pass never reached its pause point"

    def finish(self) -> None:
        self.resume.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the stale pass did not finish"
        assert self.error is None, repr(self.error)


class ConcurrentPass(StalePass):
    """A pass started during the stall: it must wait for the build row."""

    def start(self) -> None:
        self.thread.start()
        wait_until_blocked_on_lock()


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_until_blocked_on_lock(
    timeout: float = 10, what: str = "the concurrent pass", baseline: int | None = None
) -> None:
    """Wait until one more backend than now (or than ``baseline``, counted earlier by
    ``lock_waiters``) waits for a lock."""
    baseline = lock_waiters() if baseline is None else baseline
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock_waiters() > baseline:
            return
        time.sleep(0.01)
    raise AssertionError(f"{what} did not wait for the build row lock")


class BlockedFinish(StalePass):
    """A worker finishing its target during the stall: finish_target locks the build row
    before letting a target wait, so it must wait for the stale pass to commit."""

    def __init__(self, claim):
        super().__init__(claim.target.build_id)
        self.claim = claim

    def _run(self) -> None:
        try:
            assert engine.finish_target(self.claim)
        except BaseException as exc:  # reported by finish()
            self.error = exc
        finally:
            connection.close()

    def start(self) -> None:
        self.thread.start()
        wait_until_blocked_on_lock(what="the finish")


@pytest.fixture
def stall_at(monkeypatch):
    """Install the pause: the pass running in the thread registered in ``stale`` stops after
    the named function of ``builds.engine.passes`` returns, until it is resumed."""
    current: dict[str, StalePass | None] = {"stale": None}

    def install(function_name: str):
        original = getattr(passes, function_name)

        def paused(*args, **kwargs):
            result = original(*args, **kwargs)
            stale = current["stale"]
            if stale is not None and threading.current_thread() is stale.thread:
                stale.paused.set()
                assert stale.resume.wait(20), "never resumed"
            return result

        monkeypatch.setattr(passes, function_name, paused)
        return current

    return install


@pytest.fixture
def monitored(transactional_db, monkeypatch):
    monitor.install()
    dispatched = Dispatched().install(monkeypatch)
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")  # a blocked event fails instead of hanging
    yield dispatched
    monitor.uninstall()


def run_order(build: Build, target_order, window, concurrent: bool, current) -> None:
    target = BuildTarget.objects.get(build=build)
    claim = None
    stale = concurrent_pass = None
    deferred = []
    for position in range(len(target_order) + 1):
        if position == window[0]:
            stale = current["stale"] = StalePass(build.pk)
            stale.start()
            if concurrent:
                concurrent_pass = ConcurrentPass(build.pk)
                concurrent_pass.start()
        if position == window[1]:
            stale.finish()
            current["stale"] = None
            for waiter in [concurrent_pass, *deferred]:
                if waiter:
                    waiter.finish()
        if position < len(target_order):
            event = target_order[position]
            if event == "claim":
                claim = engine.begin_target(target.pk)
                assert claim is not None
            elif event == "finish" and window[0] <= position < window[1]:
                deferred.append(BlockedFinish(claim))
                deferred[-1].start()
            elif event == "finish":
                assert engine.finish_target(claim)
            else:
                engine.receive_message(target.phid, "pass")
    engine.update_build(build.pk)


def check_final_state(build: Build) -> None:
    build.refresh_from_db()
    targets = list(BuildTarget.objects.filter(build=build))
    assert len(targets) == 1, "a duplicate target was created"
    assert (build.status, targets[0].status) == ("passed", "passed")
    settled = StatusEvent.objects.filter(target=targets[0], to_status__in=BuildTarget.COMPLETE)
    assert settled.count() == 1
    assert not BuildMessage.objects.filter(build=build, is_consumed=False).exists()
    assert not monitor.violations(), monitor.violations()
    before = snapshot(build)
    engine.update_build(build.pk)
    assert snapshot(build) == before, "one more pass changed the build"


def snapshot(build: Build) -> tuple:
    return (
        Build.objects.values_list("status", "date_modified").get(pk=build.pk),
        list(BuildTarget.objects.filter(build=build).values_list("status", "attempt")),
        StatusEvent.objects.filter(build=build).count(),
    )


@pytest.mark.parametrize("pause_point", PAUSE_POINTS)
def test_a_stale_pass_paused_inside_its_transaction_changes_no_outcome(
    monitored, stall_at, buildable, pause_point
):
    current = stall_at(PAUSE_POINTS[pause_point])
    plan = waiting_plan(["a"])
    count = 0
    for target_order, window, concurrent in itertools.product(
        TARGET_ORDERS, WINDOWS, (False, True)
    ):
        build = engine.start_build(plan, buildable)
        engine.update_build(build.pk)
        try:
            run_order(build, target_order, window, concurrent, current)
            check_final_state(build)
        except AssertionError as exc:
            raise AssertionError(
                f"order {target_order}, stall over {window}, concurrent={concurrent}: {exc}"
            ) from exc
        count += 1
    ORDERS_CHECKED[f"stale pass, {pause_point}"] = count


def test_a_stale_first_pass_and_a_concurrent_one_create_each_target_once(
    monitored, stall_at, buildable
):
    current = stall_at("_update_steps")  # the stale pass has created the targets
    plan = waiting_plan(["a", "b"])
    build = engine.start_build(plan, buildable)
    stale = current["stale"] = StalePass(build.pk)
    stale.start()
    concurrent = ConcurrentPass(build.pk)
    concurrent.start()
    stale.finish()
    concurrent.finish()
    keys = list(BuildTarget.objects.filter(build=build).values_list("step_key", flat=True))
    assert sorted(keys) == ["a", "b"]
    build.refresh_from_db()
    assert (build.status, build.generation) == ("building", 1)
    assert not monitor.violations()


def test_sibling_builds_completing_together_leave_their_buildable_passed(
    monitored, stall_at, buildable, monkeypatch
):
    """Two builds of one buildable pass in concurrent passes: the first holds the buildable's
    row lock (its build passed, not yet committed) while the second waits for it. The second
    must read its sibling as the first committed it, or each pass counts the other as still
    building and the buildable stays ``building`` for ever. The read of the builds is a
    statement of its own after the lock for this reason: one statement that locked the
    buildable and joined its builds would read them as they were before it waited."""
    current = stall_at("update_buildable")  # the first pass holds the buildable's lock
    # The verdicts' passes are the two this test runs, in threads, not their senders'.
    monkeypatch.setattr("builds.engine.messages.update_after_commit", lambda build_id: None)
    plan = waiting_plan(["a"])
    first, second = (engine.start_build(plan, buildable) for _ in range(2))
    for build in (first, second):
        engine.update_build(build.pk)
        target = BuildTarget.objects.get(build=build)
        assert engine.finish_target(engine.begin_target(target.pk))
        engine.receive_message(target.phid, "pass")
    stale = current["stale"] = StalePass(first.pk)
    stale.start()
    concurrent = StalePass(second.pk)
    concurrent.thread.start()
    wait_until_blocked_on_lock(what="the sibling's pass")
    stale.finish()
    concurrent.finish()
    statuses = Build.objects.filter(buildable=buildable).values_list("status", flat=True)
    assert list(statuses) == ["passed", "passed"]
    buildable.refresh_from_db()
    assert buildable.status == "passed"
