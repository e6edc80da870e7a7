"""Every canonical order of a bounded set of events, run against the real engine.

See ``model.py`` for the events and how equivalent orders are merged, and ``harness.py``
for what each order asserts. The number of orders per scenario is printed in the test
summary ("interleavings" section).
"""

import pytest

from tests.interleavings.conftest import ORDERS_CHECKED
from tests.interleavings.model import (
    fused_chains,
    inline_chains,
    orders,
    takeover_chains,
    target_chains,
)

pytestmark = pytest.mark.django_db


def both_ways(key: str, message: str, sent_as: str = "msg") -> list[list[tuple]]:
    """A target's worker run (claim and finish together) before or after its message (an
    event ``sent_as``)."""
    run, msg = ("run", key), (sent_as, key, message)
    return [[run, msg], [msg, run]]


ONE_TARGET = {
    "one target, pass": ["pass"],
    "one target, fail": ["fail"],
    "one target, work": ["work"],
}

ONE_TARGET_COMMAND = {
    "one target, pass, abort": (["pass"], "abort"),
    "one target, fail, abort": (["fail"], "abort"),
    "one target, pass, restart": (["pass"], "restart"),
    "one target, fail, restart": (["fail"], "restart"),
}

TWO_TARGETS = {
    "two targets, pass + pass": ("pass", "pass"),
    "two targets, pass + fail": ("pass", "fail"),
    "two targets, pass + work": ("pass", "work"),
}

# Two targets and a command, kept small: target a runs and gets its message in either order,
# target b only runs (it then waits for ever) or only gets an early message (never claimed).
TWO_TARGETS_COMMAND = {
    "two targets, pass + none, abort": ("pass", [("run", "b")], "abort"),
    "two targets, fail + early pass, abort": ("fail", [("msg", "b", "pass")], "abort"),
    "two targets, pass + none, restart": ("pass", [("run", "b")], "restart"),
    "two targets, fail + early pass, restart": ("fail", [("msg", "b", "pass")], "restart"),
}


def check_all(harness, name: str, chain_choices) -> None:
    count = 0
    for order in orders(chain_choices):
        harness.check(order)
        count += 1
    ORDERS_CHECKED[name] = count
    assert count > 0


@pytest.mark.parametrize("name", ONE_TARGET)
def test_every_order_for_one_waiting_target(harness, name):
    check_all(harness(["a"]), name, [target_chains("a", ONE_TARGET[name])])


@pytest.mark.parametrize("messages", [["pass", "pass"], ["pass", "fail"]])
def test_every_order_for_one_waiting_target_and_two_verdicts(harness, messages):
    # Without the duplicate run_target delivery, which the scenarios above cover.
    name = f"one target, {' then '.join(messages)}"
    check_all(harness(["a"]), name, [target_chains("a", messages, duplicate=False)])


@pytest.mark.parametrize("name", ONE_TARGET_COMMAND)
def test_every_order_for_one_waiting_target_and_a_command(harness, name):
    messages, command = ONE_TARGET_COMMAND[name]
    chains = [target_chains("a", messages, duplicate=False), [[("cmd", command)]]]
    check_all(harness(["a"]), name, chains)


@pytest.mark.parametrize("name", TWO_TARGETS)
def test_every_order_for_two_waiting_targets(harness, name):
    first, second = TWO_TARGETS[name]
    check_all(harness(["a", "b"]), name, [both_ways("a", first), both_ways("b", second)])


@pytest.mark.parametrize("name", TWO_TARGETS_COMMAND)
def test_every_order_for_two_waiting_targets_and_a_command(harness, name):
    first, second, command = TWO_TARGETS_COMMAND[name]
    chains = [both_ways("a", first), [second], [[("cmd", command)]]]
    check_all(harness(["a", "b"]), name, chains)


def test_every_order_for_a_worker_that_stalls_past_its_lease(harness):
    name = "one target, lease taken over, pass"
    check_all(harness(["a"]), name, [takeover_chains("a", ["pass"])])


def test_every_order_for_a_target_still_running_when_its_build_fails(harness):
    """Target a fails the build while b is pending, building or waiting, with b's pass sent
    at any moment: b must never be left waiting with an accepted verdict unconsumed."""
    name = "two targets, fail + b claimed, finished and passed in any order"
    chains = [[[("run", "a"), ("msg", "a", "fail")]], target_chains("b", ["pass"], duplicate=False)]
    check_all(harness(["a", "b"]), name, chains)


RETRYING = {
    "retrying target, fail": (["a"], [["fail"]], None),
    "retrying target, fail then pass": (["a"], [["fail", "pass"]], None),
    "retrying target, fail, abort": (["a"], [["fail"]], "abort"),
}


@pytest.mark.parametrize("name", RETRYING)
def test_every_order_for_a_target_that_retries_when_it_fails(harness, name):
    """Target a retries once on failure: its failed first attempt must give exactly one
    second attempt, in the pass that settles it, unless the build is already decided; a
    verdict to the superseded attempt is refused."""
    keys, messages, command = RETRYING[name]
    chains = [target_chains(k, m, duplicate=False) for k, m in zip(keys, messages, strict=True)]
    if command:
        chains.append([[("cmd", command)]])
    check_all(harness(keys, retrying=("a",)), name, chains)


def test_every_order_for_a_retrying_target_failing_beside_one_that_fails_for_good(harness):
    """Both fail, in one pass or two: the build fails, and a retry is made only when a's
    failure is settled in a pass before b's."""
    name = "retrying target fail + other fail"
    chains = [both_ways("a", "fail"), both_ways("b", "fail")]
    check_all(harness(["a", "b"], retrying=("a",)), name, chains)


RERUN = {
    "one target, fail, rerun": ["fail"],
    "one target, pass, rerun": ["pass"],
}


@pytest.mark.parametrize("name", RERUN)
def test_every_order_for_a_rerun_of_one_target(harness, name):
    """A rerun sent at any moment: refused (409) while the target is unfinished, else its
    attempt is superseded once, a new one is pending and the build is building again."""
    chains = [target_chains("a", RERUN[name], duplicate=False), [[("cmd", "rerun:a")]]]
    check_all(harness(["a"]), name, chains)


INLINE = {
    "one target, worker's own pass, pass": ["pass"],
    "one target, worker's own pass, fail then pass": ["fail", "pass"],
}
INLINE_COMMAND = {
    "one target, worker's own pass, pass, abort": "abort",
    "one target, worker's own pass, pass, restart": "restart",
}


@pytest.mark.parametrize("name", INLINE)
def test_every_order_for_a_worker_running_its_own_pass(harness, name):
    """A finishing worker's pass, racing the queued passes of the messages' update_build:
    each order settles what the model says, at the worker's pass already."""
    check_all(harness(["a"]), name, [inline_chains("a", INLINE[name])])


@pytest.mark.parametrize("name", INLINE_COMMAND)
def test_every_order_for_a_worker_running_its_own_pass_and_a_command(harness, name):
    chains = [inline_chains("a", ["pass"]), [[("cmd", INLINE_COMMAND[name])]]]
    check_all(harness(["a"]), name, chains)


def test_every_order_for_two_workers_running_their_own_passes(harness):
    """Two finishing workers' passes race each other and the queued passes; b then waits
    for ever, a gets its verdict after its worker's pass."""
    name = "two targets, both workers' own passes, pass for a"
    worker_a = [("claim", "a"), ("ifinish", "a"), ("ipass",), ("msg", "a", "pass")]
    worker_b = [("claim", "b"), ("ifinish", "b"), ("ipass",)]
    check_all(harness(["a", "b"]), name, [[worker_a], [worker_b]])


def test_every_order_for_a_retry_claimed_by_the_workers_own_pass(harness):
    """A retry whose new attempt is created by the finishing worker's own pass is claimed
    in that pass for the worker (``building``, no ``run_target`` queued); created by a
    queued pass, it is queued like any other."""
    name = "retrying target, worker's own pass, fail"
    check_all(harness(["a"], retrying=("a",)), name, [inline_chains("a", ["fail"])])


def test_every_order_for_a_rerun_claimed_by_a_late_workers_own_pass(harness):
    """The worker's own pass comes late: a queued pass settled its target and the build
    passed, then a rerun arrived. The worker's pass applies the rerun and claims the new
    attempt for that worker."""
    name = "one target, late worker's own pass, pass, rerun"
    worker = [("claim", "a"), ("ifinish", "a"), ("msg", "a", "pass"), ("pass",)]
    worker += [("cmd", "rerun:a"), ("ipass",)]
    check_all(harness(["a"]), name, [[worker]])


FUSED = {
    "one target, finish in the worker's pass, pass": ([], ["pass"], None),
    "one target, finish in the worker's pass, fail then pass": ([], ["fail", "pass"], None),
    "one target, finish in the worker's pass, pass, abort": ([], ["pass"], "abort"),
    "one target, finish in the worker's pass, pass, restart": ([], ["pass"], "restart"),
    "retrying target, finish in the worker's pass, fail": (["a"], ["fail"], None),
}


@pytest.mark.parametrize("name", FUSED)
def test_every_order_for_a_finish_made_in_the_workers_own_pass(harness, name):
    """The finish and the worker's pass in one transaction, racing the queued passes of
    the messages' updates and a command: each order settles what the model says at that
    pass already, and a retry's attempt it creates is claimed for the worker."""
    retrying, messages, command = FUSED[name]
    chains = [fused_chains("a", messages)]
    if command:
        chains.append([[("cmd", command)]])
    check_all(harness(["a"], retrying=tuple(retrying)), name, chains)


def test_every_order_for_two_workers_finishing_in_their_own_passes(harness):
    name = "two targets, finishes in both workers' passes, pass for a"
    worker_a = [("claim", "a"), ("fpass", "a"), ("msg", "a", "pass")]
    worker_b = [("claim", "b"), ("fpass", "b")]
    check_all(harness(["a", "b"]), name, [[worker_a], [worker_b]])


RECEIVING = {
    "one target, sender's own pass, pass": (["pass"], True),
    "one target, sender's own pass, fail": (["fail"], True),
    "one target, sender's own pass, fail then pass": (["fail", "pass"], False),
}
RECEIVING_COMMAND = {
    "one target, sender's own pass, pass, abort": "abort",
    "one target, sender's own pass, pass, restart": "restart",
    "one target, sender's own pass, pass, rerun": "rerun:a",
}


@pytest.mark.parametrize("name", RECEIVING)
def test_every_order_for_a_sender_whose_process_runs_the_pass(harness, name):
    """The process that stores a verdict runs the build's pass once it commits (the lock
    free), racing the queued passes of the workers' finishes: each order settles what the
    model says at the message's own pass already."""
    messages, duplicate = RECEIVING[name]
    chains = [target_chains("a", messages, duplicate, sent_as="imsg")]
    check_all(harness(["a"]), name, chains)


@pytest.mark.parametrize("name", RECEIVING_COMMAND)
def test_every_order_for_a_sender_whose_process_runs_the_pass_and_a_command(harness, name):
    chains = [
        target_chains("a", ["pass"], duplicate=False, sent_as="imsg"),
        [[("icmd", RECEIVING_COMMAND[name])]],
    ]
    check_all(harness(["a"]), name, chains)


def test_every_order_for_two_senders_one_running_the_pass_one_finding_the_lock_busy(harness):
    """b's verdict arrives while another process holds the lock (its pass is left to the
    holder, a later pass); a's sender runs the pass itself and reads b's too."""
    name = "two targets, pass (own pass) + fail (lock busy)"
    chains = [both_ways("a", "pass", "imsg"), both_ways("b", "fail")]
    check_all(harness(["a", "b"]), name, chains)


def test_every_order_for_a_sender_and_a_worker_running_their_own_passes(harness):
    """The worker that finished the target and the process that received its verdict each
    run the build's pass, in either order, with queued passes between."""
    name = "one target, worker's and sender's own passes, pass"
    check_all(harness(["a"]), name, [inline_chains("a", ["pass"], sent_as="imsg")])
