"""A tiny pricing module: the code the ``command-junit`` example plan tests."""


def total(prices: list[float], discount_percent: float = 0) -> float:
    """The sum of ``prices`` less ``discount_percent`` percent, rounded to cents."""
    if not 0 <= discount_percent <= 100:
        raise ValueError("a discount is between 0 and 100 percent")
    return round(sum(prices) * (100 - discount_percent) / 100, 2)
