"""The generic ``*.search`` machinery (``PhabricatorApplicationSearchEngine::
buildConduitResponse``, docs/harbormaster.md §6.3).

Parameters: ``queryKey`` (a builtin query), ``constraints`` (always including ``ids`` and
``phids``), ``attachments``, ``order`` (``newest``, the default, or ``oldest``; or the vectors
``["id"]`` / ``["-id"]``), ``before``/``after`` (cursors from an earlier page) and ``limit``
(1 to 100, default 100). Result: ``{"data": [{"id", "type", "phid", "fields",
"attachments"}], "maps": {}, "query": {"queryKey"}, "cursor": {"limit", "after", "before",
"order"}}``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Model, QuerySet

from builds import phids
from builds.numbers import ascii_int
from messages_api.conduit.errors import CoreError
from messages_api.conduit.params import get_typed, invalid_type, matches
from messages_api.conduit.registry import Call

MAX_LIMIT = 100
# Harbor's objects are visible to every signed-in user (Harbormaster's "All Users").
POLICY = {"view": "users", "edit": "users"}
SEARCH_PARAMS = {
    "queryKey": "optional string",
    "constraints": "optional map<string, wild>",
    "attachments": "optional map<string, bool>",
    "order": "optional order",
    "before": "optional string",
    "after": "optional string",
    "limit": "optional int (default = 100)",
}
ORDERS = {"newest": True, "oldest": False}  # name -> descending by id


def epoch(moment: datetime | None) -> int | None:
    """A datetime as integer Unix seconds, as Conduit shows dates."""
    return int(moment.timestamp()) if moment is not None else None


@dataclass(frozen=True)
class Constraint:
    """A search constraint: its key, its Conduit type and how it narrows the queryset."""

    key: str
    spec: str
    apply: Callable[[QuerySet, Any], QuerySet]


@dataclass(frozen=True)
class SearchEngine:
    """How one object type is searched: its queryset, constraints, builtin queries
    (``all`` is always there), wire fields and attachments."""

    name: str
    queryset: Callable[[], QuerySet]
    fields: Callable[[Model], dict]
    constraints: list[Constraint] = field(default_factory=list)
    builtin_queries: dict[str, Callable[[QuerySet, Call], QuerySet]] = field(default_factory=dict)
    attachments: dict[str, Callable[[Model], dict]] = field(default_factory=dict)

    def all_constraints(self) -> dict[str, Constraint]:
        standard = [
            Constraint("ids", "list<int>", lambda qs, v: qs.filter(pk__in=v)),
            Constraint("phids", "list<phid>", lambda qs, v: qs.filter(phid__in=v)),
        ]
        return {c.key: c for c in standard + self.constraints}

    def search(self, call: Call) -> dict:
        """Run a ``*.search`` call; raises CoreError for a bad query key, constraint,
        order, cursor or limit."""
        params = call.params
        queryset = self._builtin_query(params.get("queryKey"), call)
        queryset = self._constrain(
            queryset, get_typed(params, "constraints", "map<string, wild>", {}), call.strict
        )
        attachments = [
            k
            for k in get_typed(params, "attachments", "map<string, bool>", {})
            if k in self.attachments
        ]
        page = paginate(queryset, params, call.strict)
        return {
            "data": [self._item(obj, attachments) for obj in page.rows],
            "maps": {},
            "query": {"queryKey": params.get("queryKey")},
            "cursor": page.cursor(params.get("order")),
        }

    def _builtin_query(self, key: Any, call: Call) -> QuerySet:
        queryset = self.queryset()
        if key is None or key == "" or key == "all":
            return queryset
        builtin = self.builtin_queries.get(key) if isinstance(key, str) else None
        if builtin is None:
            raise CoreError(f'Query key "{key}" does not correspond to a valid query.')
        return builtin(queryset, call)

    def _constrain(self, queryset: QuerySet, constraints: dict, strict: bool) -> QuerySet:
        known = self.all_constraints()
        for key in constraints:
            if key not in known:
                raise CoreError(f'Constraint "{key}" is not a valid constraint for this query.')
        for key, value in constraints.items():
            if value is None:
                continue
            constraint = known[key]
            value = value if strict else loosen(constraint.spec, value)
            if not matches(constraint.spec, value):
                raise invalid_type(f"constraints.{key}", constraint.spec, value)
            queryset = constraint.apply(queryset, value)
        return queryset

    def _item(self, obj: Model, attachments: list[str]) -> dict:
        return {
            "id": obj.pk,
            "type": phids.phid_type(obj.phid),
            "phid": obj.phid,
            "fields": self.fields(obj),
            "attachments": {key: self.attachments[key](obj) for key in attachments},
        }


def loosen(spec: str, value: Any) -> Any:
    """Plain form fields arrive as strings: read ``int`` and ``bool`` constraints from them
    (Harbormaster's non-strict reading)."""
    if spec == "list<int>" and isinstance(value, list):
        return [_int_or_same(v) for v in value]
    if spec == "int":
        return _int_or_same(value)
    if spec == "bool" and isinstance(value, str):
        return value.lower() in ("1", "true")
    return value


def _int_or_same(value: Any) -> Any:
    """A string of ASCII digits as an int; anything else unchanged (for the type check)."""
    number = ascii_int(value, signed=True) if isinstance(value, str) else None
    return value if number is None else number


@dataclass
class Page:
    """One page of results and where the neighbouring pages start."""

    rows: list
    limit: int
    after: str | None
    before: str | None

    def cursor(self, order: Any) -> dict:
        return {"limit": self.limit, "after": self.after, "before": self.before, "order": order}


def paginate(queryset: QuerySet, params: dict, strict: bool, max_limit: int = MAX_LIMIT) -> Page:
    """Order, cut and page ``queryset`` by id from ``order``, ``before``, ``after`` and
    ``limit`` (checked against ``max_limit``). Cursors are ids, as strings."""
    descending = _descending(params.get("order"))
    limit = read_limit(params, strict, max_limit)
    after, before = _cursor(params, "after"), _cursor(params, "before")
    if after is not None:
        queryset = queryset.filter(pk__lt=after) if descending else queryset.filter(pk__gt=after)
    if before is not None:
        queryset = queryset.filter(pk__gt=before) if descending else queryset.filter(pk__lt=before)
    backwards = before is not None and after is None
    newest_first = descending != backwards
    rows = list(queryset.order_by("-pk" if newest_first else "pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
        return Page(rows, limit, _id(rows[-1]) if rows else None, _id(rows[0]) if more else None)
    return Page(
        rows, limit, _id(rows[-1]) if more else None, _id(rows[0]) if after and rows else None
    )


def _id(row: Model) -> str:
    return str(row.pk)


def _descending(order: Any) -> bool:
    if order is None:
        return True
    if isinstance(order, str) and order in ORDERS:
        return ORDERS[order]
    if order in (["id"], ["-id"]):
        return order == ["-id"]
    raise CoreError(
        f'This query does not support the order "{order}". Supported orders are: '
        + ", ".join(ORDERS)
        + '; or the vectors ["id"] and ["-id"].'
    )


def read_limit(params: dict, strict: bool, max_limit: int) -> int:
    """The page size, default 100; refused outside 1…``max_limit`` (docs/harbormaster.md §6.3)."""
    limit = params.get("limit", 100)
    if not strict:
        limit = _int_or_same(limit)
    if not matches("int", limit):
        raise invalid_type("limit", "optional int", limit)
    if limit > max_limit:
        raise CoreError(
            f"Maximum page size for Conduit API method calls is {max_limit}, but this call "
            f"specified {limit}."
        )
    if limit < 1:
        raise CoreError(
            f"Minimum page size for API searches is 1, but this call specified {limit}."
        )
    return limit


def _cursor(params: dict, key: str) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if (number := ascii_int(value)) is not None:
        return number
    raise CoreError(f'Cursor "{key}" must be an id from an earlier page\'s "cursor".')
