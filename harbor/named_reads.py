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
"""

import functools
from dataclasses import dataclass

from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.db.models import Model


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


def read(model: type[Model], sql: str, params: list) -> list:
    """``model``'s instances of the rows ``sql`` (with ``params``) returns, as
    ``model.objects.raw(sql, params)`` gives them: fields the statement does not select are
    deferred, and a column named after no field of ``model`` becomes an attribute of that
    name, unconverted. Raises ``FieldDoesNotExist`` if the statement does not select the
    primary key; database errors propagate as the ORM raises them."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = tuple(column.name for column in cursor.description)
        rows = cursor.fetchall()
    shape = _row_shape(model, columns)
    return [_instance_of_row(model, shape, list(row)) for row in rows]


def _instance_of_row(model: type[Model], shape: _RowShape, row: list) -> Model:
    for position, converters, column in shape.converted:
        for convert in converters:
            row[position] = convert(row[position], column, connection)
    instance = model.from_db(connection.alias, shape.attnames, [row[p] for p in shape.positions])
    for name, position in shape.extras:
        setattr(instance, name, row[position])
    return instance


def joined(row: Model, model: type[Model], prefix: str, names: list[str], **known) -> Model:
    """``model``'s instance of the joined columns that ``read`` left on ``row`` as
    attributes named ``<prefix><field name>``, one for each of ``names``, with ``known``
    values besides (its primary key, from ``row``'s foreign key), its other fields deferred.
    Each value goes through its field's converters, as in an ORM read. Those attributes are
    taken off ``row``: the instance holds their converted values."""
    values = {**known, **{name: row.__dict__.pop(prefix + name) for name in names}}
    columns = tuple(model._meta.get_field(name).column for name in values)
    return _instance_of_row(model, _row_shape(model, columns), list(values.values()))
