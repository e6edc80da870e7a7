"""Conduit's parameter types: checking values against declared types, and the error texts.

Type names and messages follow Arcanist's ``PhutilTypeSpec`` (``arcanist:src/parser/
PhutilTypeSpec.php``), e.g. "Parameter 'duration' has invalid type. Expected type
'optional float|int', got type 'string'." Only the types Harbor's methods declare are known.
"""

from typing import Any

from messages_api.conduit.errors import CallError, CoreError
from messages_api.json_limits import MAX_DEPTH, too_deep, unstorable


def type_of(value: Any) -> str:
    """The ``PhutilTypeSpec`` name of ``value``'s type: ``string``, ``int``, ``float``,
    ``bool``, ``null``, ``list<…>`` or ``map<string, …>``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return f"list<{_common_type(value)}>"
    if isinstance(value, dict):
        return f"map<string, {_common_type(list(value.values()))}>"
    return type(value).__name__


def _common_type(values: list) -> str:
    kinds = {type_of(v) for v in values}
    return kinds.pop() if len(kinds) == 1 else "wild"


def matches(spec: str, value: Any) -> bool:
    """Whether ``value`` is of type ``spec`` (without ``optional``), e.g. ``float|int``,
    ``list<phid>``, ``map<string, bool>``. ``wild`` matches anything but null."""
    spec = spec.strip()
    if spec.startswith("list<") and spec.endswith(">"):
        inner = spec[5:-1]
        return isinstance(value, list) and all(matches(inner, v) for v in value)
    if spec.startswith("map<") and spec.endswith(">"):
        inner = spec[4:-1].split(",", 1)[1]
        return isinstance(value, dict) and all(matches(inner, v) for v in value.values())
    if "|" in spec:
        return any(matches(part, value) for part in spec.split("|"))
    return _SCALAR_CHECKS.get(spec, lambda v: v is not None)(value)


_SCALAR_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "phid": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, float),
    "bool": lambda v: isinstance(v, bool),
    "wild": lambda v: v is not None,
}


def invalid_type(key: str, spec: str, value: Any) -> CoreError:
    """The ``ERR-CONDUIT-CORE`` error for ``key`` whose value is not of type ``spec``."""
    return CoreError(
        f"Parameter '{key}' has invalid type. Expected type '{spec}', got type '{type_of(value)}'."
    )


def missing(keys: list[str]) -> CallError:
    """The error for required map keys that are absent (Harbormaster answers these with
    ``ERR-CONDUIT-CALL``, docs/harbormaster.md §9)."""
    return CallError("Missing required parameters: " + ", ".join(keys))


def check_map(value: dict, specs: dict[str, str]) -> None:
    """Check a map against ``{key: "[optional ]type"}``, in ``specs`` order: first every
    required key must be present, then every present key must match its type (a present
    ``null`` fails, as in ``PhutilTypeSpec``). Keys not in ``specs`` are ignored (callers
    drop them). Raises CallError (missing keys) or CoreError (a wrong type)."""
    absent = [k for k, s in specs.items() if not s.startswith("optional ") and k not in value]
    if absent:
        raise missing(absent)
    for key, spec in specs.items():
        if key in value and not matches(spec.removeprefix("optional "), value[key]):
            raise invalid_type(key, spec, value[key])


def get_typed(params: dict, key: str, spec: str, default: Any = None) -> Any:
    """Read parameter ``key`` (absent or null → ``default``) and check it against ``spec``."""
    value = params.get(key)
    if value is None:
        return default
    if not matches(spec, value):
        raise invalid_type(key, spec, value)
    return value


def check_storable(params: dict) -> None:
    """Refuse a string (or map key) anywhere in ``params`` holding a NUL character or an
    unpaired surrogate: PostgreSQL stores neither, and a query or insert would fail after
    the fact. Refuse nesting deeper than the REST API accepts (``MAX_DEPTH``, counting the
    parameters as one level). Raises CoreError naming where (``artifactData.uri``,
    ``constraints.phids[0]``). Walked without recursion."""
    pending: list[tuple[Any, str, int]] = [(value, key, 1) for key, value in params.items()]
    pending += [(key, "a parameter name", 1) for key in params]
    while pending:
        value, where, depth = pending.pop()
        if isinstance(value, str):
            _check_string(value, where)
        elif isinstance(value, dict | list) and depth >= MAX_DEPTH:
            raise CoreError(f"Parameter '{where}' {too_deep()}.")
        elif isinstance(value, dict):
            pending += [(item, f"{where}.{key}", depth + 1) for key, item in value.items()]
            pending += [(key, f"a key of '{where}'", depth + 1) for key in value]
        elif isinstance(value, list):
            pending += [(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]


def _check_string(value: str, where: str) -> None:
    reason = unstorable(value)
    if reason:
        raise CoreError(f"Parameter '{where}' {reason}.")
