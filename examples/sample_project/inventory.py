"""A tiny inventory module: the code the example external CI tests."""


class OutOfStock(Exception):
    """Raised when taking more of an item than there is."""


class Inventory:
    """Counts of items by name."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, item: str, count: int = 1) -> None:
        if count < 1:
            raise ValueError("count must be positive")
        self.counts[item] = self.counts.get(item, 0) + count

    def take(self, item: str, count: int = 1) -> None:
        if self.counts.get(item, 0) < count:
            raise OutOfStock(item)
        self.counts[item] -= count

    def total(self) -> int:
        return sum(self.counts.values())
