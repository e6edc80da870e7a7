"""The example project's tests, run by examples/external_ci.py for every build."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inventory import Inventory, OutOfStock  # noqa: E402


class TestInventory:
    def test_adding_items_counts_them(self):
        inventory = Inventory()
        inventory.add("bolt", 3)
        inventory.add("nut")
        assert inventory.total() == 4

    def test_taking_more_than_there_is_raises(self):
        inventory = Inventory()
        inventory.add("bolt", 1)
        with pytest.raises(OutOfStock):
            inventory.take("bolt", 2)

    def test_a_count_must_be_positive(self):
        with pytest.raises(ValueError):
            Inventory().add("bolt", 0)


@pytest.mark.skipif(not os.environ.get("SAMPLE_SLOW"), reason="set SAMPLE_SLOW=1 to run")
def test_many_items_add_up():
    inventory = Inventory()
    for number in range(10_000):
        inventory.add(f"item-{number % 10}")
    assert inventory.total() == 10_000


def test_the_commit_under_test_is_not_marked_broken():
    # The external CI passes the commit it was asked to test; a commit starting with "bad"
    # fails this test, so the demo can show a failing build: --commit bad...
    assert not os.environ.get("SAMPLE_COMMIT", "").startswith("bad")
