"""Every order of two builds' events around one concurrency group (limit 1), run against
the real engine: the group's admission (``builds.engine.concurrency``) joins the
interleavings harness.

Build A's target holds the group's slot; build B's is queued. The events: A's target runs
(claimed and finished: it waits), A's verdict or an abort of A, a stray run_target delivery
for B's target (a repair, a duplicate), and an engine pass over A or over B, in every order
that keeps A's own events in order. After every event at most one target of the group holds
a slot, and a claim of B's target succeeds only if B was admitted. At the end the updates the
engine asked for are run until none is left (the task queue draining): A is complete, B's
target is admitted and was sent to run, so no order leaves the group blocked.
"""

import itertools

import pytest
from django.db import transaction
from django.test import TestCase

from builds import engine, locks
from builds.engine import concurrency
from builds.models import Build, BuildTarget
from tests.conftest import make_plan
from tests.interleavings import monitor
from tests.interleavings.conftest import ORDERS_CHECKED
from tests.interleavings.harness import Dispatched, OrderFailed, describe

pytestmark = pytest.mark.django_db

GROUP = "deploy-main"
A_CHAINS = {
    "A passes": [("run", "A"), ("msg", "A", "pass")],
    "A fails": [("run", "A"), ("msg", "A", "fail")],
    "A aborted while waiting": [("run", "A"), ("abort", "A")],
    "A aborted before it runs": [("abort", "A"), ("run", "A")],
}
# With and without the stray delivery for B: its refused claim asks for a pass over B,
# which would hide a freed slot that wakes nobody.
OTHERS = ([("pass", "A"), ("pass", "B")], [("claim", "B"), ("pass", "A"), ("pass", "B")])


def orders(a_chain: list[tuple]):
    """Every order of ``a_chain`` and each of ``OTHERS`` keeping ``a_chain``'s own order."""
    seen = set()
    for others in OTHERS:
        for order in itertools.permutations(a_chain + others):
            positions = [order.index(event) for event in a_chain]
            if positions == sorted(positions) and order not in seen:
                seen.add(order)
                yield list(order)


class GroupRun:
    def __init__(self, plan, dispatched: Dispatched):
        self.dispatched = dispatched
        self.builds = {}
        for name, commit in (("A", "a" * 40), ("B", "b" * 40)):
            buildable = engine.find_or_create_buildable("repo", "main", commit)
            with TestCase.captureOnCommitCallbacks(execute=True):
                self.builds[name] = engine.start_build(plan, buildable)
            # The update start_build asked for: its task's pass.
            self.dispatched.updates.remove(self.builds[name].pk)
            with TestCase.captureOnCommitCallbacks(execute=True):
                locks.clear_update_request(self.builds[name].pk)
                engine.update_build(self.builds[name].pk)
        self.targets = {n: BuildTarget.objects.get(build=b) for n, b in self.builds.items()}
        self.claims = {}
        assert self.targets["A"].pk in dispatched.runs
        assert self.targets["B"].pk not in dispatched.runs
        assert dispatched.updates == []

    def execute(self, order: list[tuple]) -> None:
        for event in order:
            with TestCase.captureOnCommitCallbacks(execute=True):
                getattr(self, f"do_{event[0]}")(*event[1:])
            holders = concurrency.slot_holders(GROUP).count()
            assert holders <= 1, f"after {event}: {holders} targets hold the group's one slot"
        self.drain()
        self.check_final_state()

    def do_run(self, name: str) -> None:
        claim = engine.begin_target(self.targets[name].pk)
        if claim is not None:
            engine.finish_target(claim)

    def do_msg(self, name: str, kind: str) -> None:
        try:
            engine.receive_message(self.targets[name].phid, kind)
        except engine.MessageRefused:
            pass

    def do_abort(self, name: str) -> None:
        engine.receive_message(self.builds[name].phid, "abort")

    def do_claim(self, name: str) -> None:
        admitted = BuildTarget.objects.get(pk=self.targets[name].pk).date_admitted is not None
        claim = engine.begin_target(self.targets[name].pk)
        assert (claim is not None) == admitted, f"claim of {name}: admitted={admitted}"
        if claim is not None:
            self.claims[name] = claim

    def do_pass(self, name: str) -> None:
        locks.clear_update_request(self.builds[name].pk)
        engine.update_build(self.builds[name].pk)

    def drain(self) -> None:
        """Run the update_build tasks the engine asked for until it asks for none (and once
        for each build regardless, as the last of its queued updates would)."""
        for _ in range(10):
            asked = set(self.dispatched.updates)
            self.dispatched.updates.clear()
            if not asked:
                break
            for build_id in sorted(asked):
                with TestCase.captureOnCommitCallbacks(execute=True):
                    locks.clear_update_request(build_id)
                    engine.update_build(build_id)
        assert not self.dispatched.updates, "the engine kept asking for updates"

    def check_final_state(self) -> None:
        a = Build.objects.get(pk=self.builds["A"].pk)
        b_target = BuildTarget.objects.get(pk=self.targets["B"].pk)
        if a.status in Build.COMPLETE:
            assert b_target.date_admitted is not None, "A is complete, B is still queued"
            assert b_target.pk in self.dispatched.runs, "B was admitted but never sent to run"
        else:
            assert b_target.date_admitted is None
        assert not monitor.violations(), monitor.violations()


@pytest.fixture
def group_plan(db, monkeypatch):
    monitor.install()
    dispatched = Dispatched().install(monkeypatch)
    step = {
        "key": "deploy",
        "step_type": "sleep",
        "wait_for_message": True,
        "config": {"concurrency": {"group": "deploy-${buildable.ref}", "limit": 1}},
    }
    return make_plan("grouped", [step]), dispatched


@pytest.mark.parametrize("name", A_CHAINS)
def test_every_order_around_a_concurrency_group(group_plan, name):
    plan, dispatched = group_plan
    count = 0
    for order in orders(A_CHAINS[name]):
        try:
            with transaction.atomic():
                dispatched.updates.clear()
                dispatched.runs.clear()
                GroupRun(plan, dispatched).execute(order)
                transaction.set_rollback(True)
        except AssertionError as exc:
            raise OrderFailed(f"order [{describe(order)}]: {exc}") from exc
        count += 1
    ORDERS_CHECKED[f"concurrency group, {name}"] = count
    assert count > 0
