"""Reading whole numbers typed by people (query strings, form fields, command arguments).

``str.isdigit()`` is true for characters ``int()`` refuses (``"²"``) and ``int()`` reads
non-ASCII digits (``"٣"`` is 3), so neither tells whether text is an id. These accept ASCII
digits only.
"""

import re

ASCII_DIGITS = re.compile(r"[0-9]+")
SIGNED_ASCII_DIGITS = re.compile(r"-?[0-9]+")


def ascii_int(text: str, signed: bool = False) -> int | None:
    """``text`` as an int if it is ASCII digits only (with one leading ``-`` when
    ``signed``), else None. ``"12"`` → 12; ``"²"``, ``"٣"``, ``" 1"``, ``""`` → None, and so
    is a number of more digits than ``int()`` converts (4,300 by default), which no id has."""
    pattern = SIGNED_ASCII_DIGITS if signed else ASCII_DIGITS
    if not isinstance(text, str) or not pattern.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:  # sys.get_int_max_str_digits()
        return None
