"""Fixtures for the interleavings harness, and the count of orders checked in the summary."""

import pytest

from builds.models import BuildPlan
from tests.conftest import make_plan
from tests.interleavings import monitor
from tests.interleavings.harness import Dispatched, Harness

# Scenario name -> number of distinct orders checked, for the terminal summary.
ORDERS_CHECKED: dict[str, int] = {}


def pytest_terminal_summary(terminalreporter):
    if not ORDERS_CHECKED:
        return
    terminalreporter.section("interleavings")
    for name, count in ORDERS_CHECKED.items():
        terminalreporter.write_line(f"{name}: {count} orders")
    terminalreporter.write_line(f"total: {sum(ORDERS_CHECKED.values())} distinct orders checked")


def waiting_plan(keys: list[str], retrying: tuple[str, ...] = (), **fields) -> BuildPlan:
    """A plan of independent waiting ``sleep`` steps, restartable always; those of
    ``retrying`` retry once when they fail."""
    retry = {"retry": {"limit": 1, "on": ["failed"]}}
    steps = [
        {
            "key": key,
            "step_type": "sleep",
            "wait_for_message": True,
            "config": retry if key in retrying else {},
        }
        for key in keys
    ]
    return make_plan(f"interleavings-{'-'.join(keys)}", steps, **fields)


@pytest.fixture
def harness(db, buildable, monkeypatch):
    """Make a Harness for a plan of waiting steps named by ``keys``, with the invariant
    monitor installed for the test's transaction."""
    monitor.install()
    dispatched = Dispatched().install(monkeypatch)

    def make(keys: list[str], retrying: tuple[str, ...] = ()) -> Harness:
        return Harness(waiting_plan(keys, retrying), buildable, dispatched)

    return make
