"""Model instances from the few named SQL reads of the hot path (``builds.engine.rows``,
``accounts.models.ApiToken.find_active``), for less CPU than ``Manager.raw()``.

``Manager.raw()`` works out on every query which of the statement's columns are which of
the model's fields, in which order the model wants them, and which converters each needs
(a JSON column comes as text). On these reads that costs the process about as much CPU as
the rest of the read, the round trip included (README, "Benchmark"). ``read`` works it out
once per model and column list, then builds each instance as ``raw()`` does, with
``Model.from_db`` and the fields' own converters. For Harbor's models (no composite
primary key) on PostgreSQL, whose backend adds no converters of its own and needs no
identifier conversion, the instances are those ``raw()`` gives; ``tests/engine/
test_rows.py`` holds each read to ``raw()`` and to its ORM equivalent. Reads go to the
default database, the only one Harbor has.

Each read is also a prepared statement of its database session (``PREPARE``, then
``EXECUTE``), so PostgreSQL plans it once per connection rather than on every call:
planning the joins of the build's lock and of the receiving target cost PostgreSQL several
times what running them does. Harbor's named reads select their columns by name
(``select_list``), not ``*``, so a migration that adds a column leaves a prepared
statement's result unchanged. One that changes a column's type fails each session's next
run of the statements reading it, once ("cached plan must not change result type"), and
the next transaction prepares them again (docs/deploy.md stops every process to migrate).
``DATABASE_PREPARED_READS=0`` turns this off, for a pooler that hands a client another
session at each transaction (PgBouncer's transaction mode).
"""

import functools
import itertools
import re
import weakref
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import DatabaseError, connection
from django.db.models import Model
from psycopg2 import errorcodes


@dataclass(frozen=True)
class _RowShape:
    """How a row of one column list becomes one model's instance: the model's fields among
    the columns in the model's order (``attnames``, found at ``positions``), the converters
    of those that have any (position, converters, the field's column expression), and the
    other columns, which become attributes as they come (name, position)."""

    attnames: tuple[str, ...]
    positions: tuple[int, ...]
    converted: tuple[tuple[int, tuple, object], ...]
    extras: tuple[tuple[str, int], ...]


@functools.cache
def _row_shape(model: type[Model], columns: tuple[str, ...]) -> _RowShape:
    # Cached for the process: a shape depends only on the model and the columns. The
    # converters are the fields' own (``from_db_value``), called with the connection of
    # the read that uses them, so no connection's state is kept here.
    fields = [f for f in model._meta.concrete_fields if f.column in columns]
    if model._meta.pk not in fields:
        raise FieldDoesNotExist(f"a named read of {model.__name__} must select its primary key")
    positions = [columns.index(f.column) for f in fields]
    converted = []
    for position, field in zip(positions, fields, strict=True):
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            converted.append((position, tuple(converters), column))
    known = {f.column for f in fields}
    extras = [(name, i) for i, name in enumerate(columns) if name not in known]
    return _RowShape(
        tuple(f.attname for f in fields), tuple(positions), tuple(converted), tuple(extras)
    )


def table(model: type[Model]) -> str:
    """``model``'s table name, quoted for a named read's SQL."""
    return connection.ops.quote_name(model._meta.db_table)


def column(model: type[Model], name: str) -> str:
    """The column of ``model``'s field ``name``, quoted for a named read's SQL. Raises
    ``FieldDoesNotExist`` for a name that is no field of ``model``."""
    return connection.ops.quote_name(model._meta.get_field(name).column)


def select_list(
    model: type[Model], alias: str, names: list[str] | None = None, prefix: str = ""
) -> str:
    """The select list of ``model``'s fields ``names`` (every concrete field if None), each
    ``<alias>."<column>"``, named ``"<prefix><field name>"`` if ``prefix`` is given (for
    ``joined``); names from the model's ``_meta``. Raises ``FieldDoesNotExist`` for a name
    that is no field of ``model``."""
    if names is None:
        names = [field.name for field in model._meta.concrete_fields]
    if not prefix:
        return ", ".join(f"{alias}.{column(model, name)}" for name in names)
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{column(model, name)} AS {quote(prefix + name)}" for name in names)


def read(model: type[Model], sql: str, params: list) -> list:
    """``model``'s instances of the rows ``sql`` (with ``params``, each ``%s`` a value, no
    literal ``%``) returns, as ``model.objects.raw(sql, params)`` gives them: fields the
    statement does not select are deferred, and a column named after no field of ``model``
    becomes an attribute of that name, unconverted. Raises ``FieldDoesNotExist`` if the
    statement does not select the primary key; database errors propagate as the ORM raises
    them."""
    with connection.cursor() as cursor:
        _execute(cursor, sql, params)
        columns = tuple(column.name for column in cursor.description)
        rows = cursor.fetchall()
    shape = _row_shape(model, columns)
    return [_instance_of_row(model, shape, list(row)) for row in rows]


def values(sql: str, params: list) -> list[tuple]:
    """The rows ``sql`` (with ``params``, as for ``read``) returns, as tuples: a named read
    of values that are no model's instances, prepared as ``read``'s are."""
    with connection.cursor() as cursor:
        _execute(cursor, sql, params)
        return cursor.fetchall()


def joined(row: Model, model: type[Model], prefix: str, names: list[str], **known) -> Model:
    """``model``'s instance of the joined columns that ``read`` left on ``row`` as
    attributes named ``<prefix><field name>``, one for each of ``names``, with ``known``
    values besides (its primary key, from ``row``'s foreign key), its other fields deferred.
    Each value goes through its field's converters, as in an ORM read. Those attributes are
    taken off ``row``: the instance holds their converted values."""
    fields = {**known, **{name: row.__dict__.pop(prefix + name) for name in names}}
    columns = tuple(model._meta.get_field(name).column for name in fields)
    return _instance_of_row(model, _row_shape(model, columns), list(fields.values()))


def _instance_of_row(model: type[Model], shape: _RowShape, row: list) -> Model:
    for position, converters, column in shape.converted:
        for convert in converters:
            row[position] = convert(row[position], column, connection)
    instance = model.from_db(connection.alias, shape.attnames, [row[p] for p in shape.positions])
    for name, position in shape.extras:
        setattr(instance, name, row[position])
    return instance


# Statement names are unique in the process, so a name is never prepared twice on one
# session, whichever thread or earlier failure used the session before.
_statement_numbers = itertools.count(1)
# Per database session (psycopg2 connection): the statements prepared on it, SQL -> name.
# Keyed weakly by the connection, so a reconnection starts an empty set with its session.
# Django gives each thread a connection of its own, so no two threads share a set.
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# The errors after which a statement this process prepared may be gone or stale: a pooler
# or ``DISCARD ALL`` deallocated it, or a migration changed a column's type.
_STALE = {errorcodes.INVALID_SQL_STATEMENT_NAME, errorcodes.FEATURE_NOT_SUPPORTED}
# The classes of the errors a statement's run raises, after its PREPARE succeeded: a lock
# not available (``lock_build(wait=False)``, routinely), a deadlock or serialization
# failure, a cancelled statement. Should one come from the PREPARE after all (a lock
# timeout while a migration holds the table), the next EXECUTE finds no statement
# (``_STALE``) and the next transaction prepares it again.
_RAISED_BY_A_RUN = {"40", "55", "57"}


def _execute(cursor, sql: str, params: list) -> None:
    if not settings.DATABASE_PREPARED_READS:
        cursor.execute(sql, params)
        return
    session = _prepared.setdefault(connection.connection, {})
    name = session.get(sql)
    arguments = f"({', '.join(['%s'] * len(params))})" if params else ""
    if name is None:
        # One round trip: PREPARE, then EXECUTE, in one simple query. PREPARE is not
        # transactional, so a rollback keeps the statement. If the query fails in the
        # PREPARE (or the session is lost), the next call prepares under a new name.
        name = f"harbor_read_{next(_statement_numbers)}"
        statement = f"PREPARE {name} AS {_numbered(sql)}; EXECUTE {name}{arguments}"
    else:
        statement = f"EXECUTE {name}{arguments}"
    try:
        cursor.execute(statement, params)
    except DatabaseError as exc:
        code = getattr(exc.__cause__, "pgcode", None) or ""
        if code in _STALE:
            session.pop(sql, None)
        elif code[:2] in _RAISED_BY_A_RUN:
            # Keep the prepared statement: a build's lock tried without waiting fails
            # whenever a pass holds it, and each failure would otherwise leave a statement.
            session[sql] = name
        raise
    session[sql] = name


def _numbered(sql: str) -> str:
    """``sql`` with its ``%s`` placeholders as PREPARE's ``$1``, ``$2``…. Raises
    ``ValueError`` for a literal ``%`` (``%%``), which a named read has no need of."""
    if "%%" in sql:
        raise ValueError("a named read has no literal %")
    parts = sql.split("%s")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


_PREPARED = re.compile(r"PREPARE (\w+) AS (.*?); EXECUTE \1\b", re.DOTALL)
_EXECUTED = re.compile(r"EXECUTE (harbor_read_\d+)\b")


def statement_of(executed: str) -> str:
    """The SQL an executed query ran, for reading what a block of code did (tests, the
    bench): a named read's ``PREPARE … ; EXECUTE …`` or ``EXECUTE …`` as the statement it
    executes (``$1``… for its values), read back from the session's
    ``pg_prepared_statements``, so on the connection that ran it; any other query as it is.
    Raises ``LookupError`` for an ``EXECUTE`` of a statement the session does not have."""
    if prepared := _PREPARED.match(executed):
        return prepared.group(2)
    if not (run := _EXECUTED.match(executed)):
        return executed
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE name = %s", [run[1]])
        found = cursor.fetchone()
    if found is None:
        raise LookupError(f"this session has no statement {run[1]}")
    return _PREPARED.match(found[0]).group(2)
