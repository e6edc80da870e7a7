"""Run one order of events against the real engine and check the invariants of docs/design.md §8.

Each order runs in a savepoint of the test's transaction that is rolled back afterwards, so
thousands of orders share one test database cheaply. Follow-up tasks are not sent: the
engine's ``dispatch`` functions are replaced by a recorder, and each event's on-commit
callbacks are captured and run at once (as a real commit would run them), so the harness
can check that every event asks for the update that will settle it (and that a ``work``
message, which settles nothing, asks for none and changes nothing a pass reads). A message
or command arrives either while another process is in a pass, holding the build's Redis lock
and its row (``msg``, ``cmd``: the lock's holder is asked for another pass), or with the
build's row free (``imsg``, ``icmd``: the receiving process runs the pass itself, and the
build must be as the model's pass leaves it at once).
"""

import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from unittest import mock

from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from builds import engine, locks
from builds.engine import dispatch, rows
from builds.models import Build, BuildMessage, BuildPlan, BuildTarget, StatusEvent
from tests.interleavings import monitor
from tests.interleavings.model import Model

COMPLETE = BuildTarget.COMPLETE


@dataclass
class Dispatched:
    """Follow-up tasks the engine asked for, in order."""

    updates: list[int] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)

    def install(self, monkeypatch) -> "Dispatched":
        monkeypatch.setattr(
            "builds.engine.dispatch.update_build",
            lambda build_id, countdown=0: self.updates.append(build_id),
        )
        monkeypatch.setattr(
            "builds.engine.dispatch.run_targets",
            lambda target_ids, countdown=0, reclaim=False: self.runs.extend(target_ids),
        )
        return self


class OrderFailed(AssertionError):
    pass


def describe(order: list[tuple]) -> str:
    return " ".join("/".join(str(part) for part in event) for event in order)


class Harness:
    """Runs orders of events for builds of ``plan`` (one waiting step per key)."""

    def __init__(self, plan: BuildPlan, buildable, dispatched: Dispatched):
        self.plan = plan
        self.buildable = buildable
        self.keys = [step["key"] for step in plan.snapshot()]
        self.retrying = frozenset(s["key"] for s in plan.snapshot() if s["config"].get("retry"))
        self.dispatched = dispatched

    def check(self, order: list[tuple]) -> None:
        """Run ``order`` in a savepoint that is rolled back; raise OrderFailed naming the
        order if any invariant breaks."""
        try:
            with transaction.atomic():
                Run(self, order).execute()
                transaction.set_rollback(True)
        except AssertionError as exc:
            raise OrderFailed(f"order [{describe(order)}]: {exc}") from exc


class Run:
    """One order's run: the build, its generation-1 targets, the claims, and the model."""

    def __init__(self, harness: Harness, order: list[tuple]):
        self.harness = harness
        self.order = order
        self.model = Model(harness.keys, harness.retrying)
        self.claims: dict[str, engine.Claim | None] = {}
        self.stale_claims: dict[str, engine.Claim] = {}
        self.last_pass = len(harness.dispatched.updates)
        with TestCase.captureOnCommitCallbacks(execute=True):
            self.build = engine.start_build(harness.plan, harness.buildable)
        # The start ran the first pass (no process could see the build before it committed,
        # so no event of an order can come between them): the targets are created and sent
        # to run, and no update was asked for.
        assert len(harness.dispatched.updates) == self.last_pass, "the start queued an update"
        self.targets = {
            t.step_key: t for t in BuildTarget.objects.filter(build=self.build, generation=1)
        }
        assert set(self.targets) == set(harness.keys)
        assert {t.pk for t in self.targets.values()} <= set(harness.dispatched.runs)

    def execute(self) -> None:
        for event in self.order:
            self.step(event)
        self.check_final_state()

    def step(self, event: tuple) -> None:
        dispatched = self.harness.dispatched
        kind = event[0]
        if kind in ("msg", "imsg") and event[2] == "work":
            self.step_work(event)
            return
        if kind in ("imsg", "icmd"):
            self.step_with_own_pass(event)
            return
        held = self._lock_held_elsewhere() if kind in ("msg", "cmd") else nullcontext()
        with held, TestCase.captureOnCommitCallbacks(execute=True):
            acted = getattr(self, f"do_{kind}")(*event[1:])
        if acted and kind not in ("pass", "ipass", "fpass"):
            # Fired now, or by an earlier event since the last pass (the update is coalesced:
            # one queued update_build serves every commit until it starts; a busy lock's
            # holder schedules one fallback update per lease).
            assert self.build.pk in dispatched.updates[self.last_pass :], (
                f"{event}: no update_build fired"
            )
            if kind in ("msg", "cmd"):
                dirty = locks.client().exists(locks.dirty_key(self.build.pk))
                assert dirty, f"{event}: the lock's holder was not asked for another pass"
            else:
                assert locks.update_request_queued(self.build.pk), f"{event}: no update queued"

    @contextmanager
    def _lock_held_elsewhere(self):
        """Another process mid-pass for the event's duration: it holds the build's Redis
        lock and its row (whose pass, later in the order, reads what the event commits). The
        row is shown taken to the event's own pass, which locks it ``NOWAIT``; the orders run
        in one connection, where another cannot hold a row of this uncommitted build."""
        lock_build = rows.lock_build

        def row_taken(build_id: int, wait: bool = True):
            if not wait and build_id == self.build.pk:
                raise rows.BuildLocked(f"build {build_id} is locked")
            return lock_build(build_id, wait)

        with self._redis_lock_held_elsewhere(), mock.patch.object(rows, "lock_build", row_taken):
            yield

    @contextmanager
    def _redis_lock_held_elsewhere(self):
        """The build's Redis lock held by another process for the block."""
        r, key = locks.client(), locks.lock_key(self.build.pk)
        token = uuid.uuid4().hex
        r.set(key, token, px=60_000)
        try:
            yield
        finally:
            if r.get(key) == token.encode():
                r.delete(key)

    def step_with_own_pass(self, event: tuple) -> None:
        """A message or command whose receiving process runs the build's pass once it has
        committed, the build's row free (``engine.update_after_commit``), while another
        process holds the Redis lock between two passes: no update is queued, no pass is
        asked of the holder, and the build is at once as the model's pass leaves it."""
        queued = len(self.harness.dispatched.updates)
        r, dirty_key = locks.client(), locks.dirty_key(self.build.pk)
        marked_before = r.exists(dirty_key)  # by an earlier ``msg`` of the order
        # Another process holds the Redis lock between two of its passes: the row is free,
        # so the receiving process passes without the lock and asks the holder for nothing.
        with self._redis_lock_held_elsewhere(), TestCase.captureOnCommitCallbacks(execute=True):
            received = self.do_msg(*event[1:]) if event[0] == "imsg" else self.do_cmd(event[1])
        assert len(self.harness.dispatched.updates) == queued, f"{event}: update_build queued"
        assert marked_before or not r.exists(dirty_key), f"{event}: the holder was asked to pass"
        if received:
            self.last_pass = queued
            self.model.engine_pass()
            self.check_model_now(f"after {event}'s own pass")

    def step_work(self, event: tuple) -> None:
        """A ``work`` message wakes no pass, which is safe only if it changes nothing a pass
        reads: so the order's final pass after it is one more pass at the same state, and
        the passes before it have already been asked for by the events they settle."""
        sent, read = len(self.harness.dispatched.updates), self._pass_inputs()
        with TestCase.captureOnCommitCallbacks(execute=True):
            self.do_msg(*event[1:])
        assert len(self.harness.dispatched.updates) == sent, f"{event}: update_build fired"
        assert self._pass_inputs() == read, f"{event}: changed what a pass reads"

    def _pass_inputs(self) -> tuple:
        """What a pass reads of the build: its status and generation, its targets' states
        and the messages it may consume."""
        build = Build.objects.values_list("status", "generation").get(pk=self.build.pk)
        targets = BuildTarget.objects.filter(build=self.build).order_by("pk")
        consumable = BuildMessage.objects.filter(
            build=self.build,
            is_consumed=False,
            type__in=BuildMessage.VERDICTS | BuildMessage.COMMANDS,
        )
        return (
            build,
            list(targets.values_list("pk", "status", "attempt", "superseded_by")),
            list(consumable.order_by("pk").values_list("pk", flat=True)),
        )

    def do_pass(self) -> bool:
        # An update_build task's pass: it clears the queued mark before reading anything.
        locks.clear_update_request(self.build.pk)
        self.last_pass = len(self.harness.dispatched.updates)
        engine.update_build(self.build.pk)
        self.model.engine_pass()
        return True

    def do_ifinish(self, key: str) -> bool:
        """A worker finishes and will run the build's pass itself (``ipass``, later in its
        chain): no update is queued for it."""
        claim = self.claims.get(key)
        if claim is None:
            return False
        expected = self.model.targets[key] == "building"
        moved = engine.finish_target(claim, queue_update=False)
        self.model.finish(key)
        assert moved == expected, f"ifinish {key}: moved={moved}, model {expected}"
        return False

    def do_ipass(self) -> bool:
        """The finishing worker's own pass after its finish committed alone, through the Redis
        lock as ``run_target`` runs it once the lock's holder released it (free here: events
        run one at a time), waiting for its next target: the pass claims
        the first target it creates for it. It must leave the build as the model's pass
        does at once, not at the order's final pass: nothing else was asked to pass."""
        return self._own_pass()

    def do_fpass(self, key: str) -> bool:
        """A finishing worker's finish made inside its own pass, as ``run_target`` makes it
        when the build's row is free (``engine.run_own_passes``): one transaction finishes
        the target and passes, without the Redis lock, which another process holds between
        two passes here."""
        claim = self.claims.get(key)
        if claim is None:
            return self._own_pass()  # no claim was made: the worker never ran the step
        expected = self.model.targets[key] == "building"
        moved = []

        def finish(build) -> None:
            moved.append(engine.finish_in_pass(claim, None, "failed", build))

        def busy() -> None:
            raise AssertionError(f"fpass {key}: the row was free, yet the worker waited for Redis")

        self.model.finish(key)
        with self._redis_lock_held_elsewhere():
            self._own_pass(lambda: engine.run_own_passes(self.build.pk, finish, if_busy=busy))
        assert moved == [expected], f"fpass {key}: moved={moved}, model {expected}"
        return True

    def _own_pass(self, run=None) -> bool:
        """The finishing worker's pass, taking the target it creates for the worker: ``run``
        if given, else the pass through the Redis lock (``run_exclusively``, free here)."""
        self.last_pass = len(self.harness.dispatched.updates)
        with dispatch.taking_one_target() as taken:
            with TestCase.captureOnCommitCallbacks(execute=True):
                if run is not None:
                    run()
                else:
                    ran = locks.run_exclusively(
                        self.build.pk, engine.update_build, lambda seconds: None
                    )
                    assert ran, "the lock was free, yet the worker did not run the pass"
        handed = self.model.engine_pass(take=True)
        got = [(c.target.generation, c.target.step_key) for c in taken]
        assert got == ([handed] if handed else []), f"claimed for the worker {got}, model {handed}"
        for claim in taken:
            row = BuildTarget.objects.get(pk=claim.target.pk)
            assert (row.status, row.attempt) == ("building", claim.attempt)
        self.check_model_now("after the worker's pass")
        return True

    def check_model_now(self, when: str) -> None:
        """The build and its targets are as the model says (right after a pass that must
        settle everything it could at once)."""
        build = Build.objects.get(pk=self.build.pk)
        assert (build.status, build.generation) == (self.model.build, self.model.generation), (
            f"{when}: build {build.status}, model {self.model.build}"
        )
        first = {t.step_key: t.status for t in self._targets(generation=1, step_attempt=1)}
        assert first == self.model.targets, f"{when}: targets {first}"
        current = {t.step_key: t.status for t in self._targets(generation=1, superseded_by="")}
        assert current == self.model.current(), f"{when}: current {current}"

    def do_claim(self, key: str) -> bool:
        claim = engine.begin_target(self.targets[key].pk)
        expected = self.model.claim(key)
        assert (claim is not None) == expected, f"claim {key}: got {claim}, model {expected}"
        self.claims[key] = claim
        # A claim made needs no pass yet (its finish fires one); a claim refused fires one.
        return claim is None

    def do_finish(self, key: str) -> bool:
        claim = self.claims.get(key)
        if claim is None:
            return False  # no worker holds a claim, so nobody finishes
        expected = self.model.targets[key] == "building"
        moved = engine.finish_target(claim)
        self.model.finish(key)
        assert moved == expected, f"finish {key}: moved={moved}, model {expected}"
        return True

    def do_run(self, key: str) -> bool:
        self.do_claim(key)
        return self.do_finish(key) or True

    def do_takeover(self, key: str) -> bool:
        """The claim's lease runs out (its worker stalled) and a redelivered run_target
        claims the target again."""
        BuildTarget.objects.filter(pk=self.targets[key].pk).update(
            lease_expires=timezone.now() - timedelta(seconds=1)
        )
        claim = engine.begin_target(self.targets[key].pk)
        expected = self.model.takeover(key)
        assert (claim is not None) == expected, f"takeover {key}: got {claim}, model {expected}"
        if claim is not None:
            assert claim.attempt == self.claims[key].attempt + 1
            self.stale_claims[key], self.claims[key] = self.claims[key], claim
        return claim is None

    def do_late(self, key: str) -> bool:
        """The stalled worker wakes up and finishes with an error: it must change nothing."""
        moved = engine.finish_target(self.stale_claims[key], error="late failure")
        assert not moved, f"late {key}: a worker whose claim was taken over moved the target"
        return True

    def do_dup(self, key: str) -> bool:
        claim = engine.begin_target(self.targets[key].pk)
        assert claim is None, f"duplicate delivery claimed {key} while its lease holds"
        return True

    def do_msg(self, key: str, kind: str) -> bool:
        return self._receive(self.targets[key].phid, kind, self.model.message(key, kind))

    def do_cmd(self, command: str) -> bool:
        return self._receive(self.build.phid, command, self.model.command(command))

    def _receive(self, phid: str, kind: str, expected: bool) -> bool:
        kind, _, step = kind.partition(":")  # "rerun:<key>"
        try:
            engine.receive_message(phid, kind, step_key=step or None)
            accepted = True
        except engine.MessageRefused:
            accepted = False
        assert accepted == expected, f"{kind} to {phid}: accepted={accepted}, model {expected}"
        return accepted

    # -- the invariants ---------------------------------------------------------------

    def check_final_state(self) -> None:
        build = Build.objects.get(pk=self.build.pk)
        model = self.model
        assert (build.status, build.generation) == (model.build, model.generation), (
            f"build {build.status}/{build.generation}, model {model.build}/{model.generation}"
        )
        first = {t.step_key: t.status for t in self._targets(generation=1, step_attempt=1)}
        assert first == model.targets, f"targets {first}, model {model.targets}"
        current = {t.step_key: t.status for t in self._targets(generation=1, superseded_by="")}
        assert current == model.current(), f"current attempts {current}, model {model.current()}"
        retried = {t.step_key for t in self._targets(generation=1, step_attempt=2)}
        assert retried == set(model.retried), f"retried {retried}, model {set(model.retried)}"
        self.check_nothing_lost(build)
        self.check_settled_once()
        self.check_first_verdict_won()
        assert not monitor.violations(), monitor.violations()
        self.check_pending_targets_dispatched(build)
        self.check_one_more_pass_changes_nothing()

    def _targets(self, **filters) -> list[BuildTarget]:
        return list(BuildTarget.objects.filter(build=self.build, **filters))

    def check_nothing_lost(self, build: Build) -> None:
        lost = BuildMessage.objects.filter(
            build=build,
            is_consumed=False,
            type__in=BuildMessage.VERDICTS,
            target__status=BuildTarget.Status.WAITING,
            target__generation=build.generation,
        )
        assert not lost.exists(), f"unconsumed verdicts for waiting targets: {list(lost)}"
        commands = BuildMessage.objects.filter(
            build=build, is_consumed=False, type__in=["abort", "restart"]
        )
        assert not commands.exists(), "an unconsumed command after the last pass"

    def check_settled_once(self) -> None:
        for target in self._targets():
            settled = StatusEvent.objects.filter(target=target, to_status__in=COMPLETE).count()
            expected = 1 if target.status in COMPLETE else 0
            assert settled == expected, f"target {target.step_key} settled {settled} times"

    def check_first_verdict_won(self) -> None:
        for target in self._targets(generation=1):
            event = StatusEvent.objects.filter(
                target=target, cause=StatusEvent.Cause.MESSAGE
            ).first()
            if event is None:
                continue
            first = (
                BuildMessage.objects.filter(target=target, type__in=BuildMessage.VERDICTS)
                .order_by("id")
                .first()
            )
            assert event.message_id == first.pk, f"{target.step_key}: not the first verdict"
            assert target.status == ("passed" if first.type == "pass" else "failed")

    def check_pending_targets_dispatched(self, build: Build) -> None:
        pending = {t.pk for t in self._targets(generation=build.generation, status="pending")}
        missing = pending - set(self.harness.dispatched.runs)
        assert not missing, f"pending targets never sent to run_target: {missing}"

    def check_one_more_pass_changes_nothing(self) -> None:
        before = self.snapshot()
        with TestCase.captureOnCommitCallbacks(execute=True):
            engine.update_build(self.build.pk)
        assert self.snapshot() == before, "one more pass changed the build"

    def snapshot(self) -> tuple:
        build = Build.objects.values_list("status", "generation", "date_modified").get(
            pk=self.build.pk
        )
        targets = list(
            BuildTarget.objects.filter(build=self.build)
            .order_by("pk")
            .values_list("pk", "status", "attempt", "lease_expires", "superseded_by")
        )
        messages = list(
            BuildMessage.objects.filter(build=self.build)
            .order_by("pk")
            .values_list("pk", "is_consumed", "outcome", "date_consumed")
        )
        events = StatusEvent.objects.filter(build=self.build).count()
        return build, targets, messages, events
