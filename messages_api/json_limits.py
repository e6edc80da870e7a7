"""What JSON input Harbor reads, shared by the REST parser and the Conduit transport.

Python's ``json`` raises more than ``JSONDecodeError`` on text that is valid JSON: a
``ValueError`` for an integer of more digits than ``int()`` converts (4,300 unless
``sys.set_int_max_str_digits`` says otherwise) and a ``RecursionError`` for nesting deeper
than the interpreter's stack allows. ``read_json`` turns both into ``UnreadableJson``, whose
text says why, so no caller answers them as a server error. ``MAX_DEPTH`` is the nesting
both APIs accept, and ``unstorable`` the strings both refuse.
"""

import json
import re
import sys
from typing import Any

MAX_DEPTH = 32  # arrays and objects; a message is 4 deep ({"unit": [{"coverage": {}}]})
SURROGATE = re.compile("[\ud800-\udfff]")


class UnreadableJson(ValueError):
    """Valid JSON Harbor does not read; ``str()`` is a verb phrase for "The JSON …"
    ("is nested more than 32 levels deep")."""


def too_deep() -> str:
    """The reason for nesting deeper than ``MAX_DEPTH``, as a verb phrase."""
    return f"is nested more than {MAX_DEPTH} levels deep"


def read_json(text: str, **options: Any) -> Any:
    """``json.loads(text, **options)``. Raises ``json.JSONDecodeError`` for malformed text
    and UnreadableJson for an integer too long for ``int()`` or nesting too deep for the
    parser's recursion."""
    try:
        return json.loads(text, **options)
    except json.JSONDecodeError:
        raise
    except RecursionError as error:
        raise UnreadableJson(too_deep()) from error
    except ValueError as error:  # int()'s digit limit: json's only other ValueError
        limit = sys.get_int_max_str_digits()
        raise UnreadableJson(f"holds a number of more than {limit} digits") from error


def unstorable(text: str) -> str:
    """Why PostgreSQL cannot store the string ``text`` (it refuses NUL and unpaired
    surrogates in text columns, as a server error after the fact), as a verb phrase for
    "The string …" ("contains a NUL character (\\u0000)"); "" if it can."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    if SURROGATE.search(text):
        return "contains an unpaired surrogate (\\ud800-\\udfff), which is not a Unicode character"
    return ""
