"""SQL for the hot paths, where building an ORM query costs more than running it.

The ORM spends more CPU building each of these statements than PostgreSQL spends answering
it (README, "Benchmark"). The API's per-request lookups and the
engine pass's statements therefore use these helpers; everything else uses the ORM.

- Reads that join several tables (the API token and its user, a receiving build target with
  its build and plan) select each model's columns under a ``<prefix>__<attname>`` alias
  (``columns``) and turn them into instances with Django's public ``Model.from_db``
  (``instance``). Columns a query leaves out are deferred, as with ``QuerySet.only()``:
  reading one costs a query, never a wrong value.
- ``update`` and ``insert`` write rows with values prepared by their model fields, exactly
  as ``QuerySet.update`` and ``bulk_create`` would.
"""

from collections.abc import Iterable, Mapping, Sequence

from django.db import connection
from django.db.models import Model


def columns(model: type[Model], table_alias: str, prefix: str, only: Iterable[str] = ()) -> str:
    """SQL select-list for ``model``'s concrete fields (or the attnames in ``only``, in
    model order), each as ``<table_alias>."<column>" AS "<prefix>__<attname>"``."""
    wanted = set(only)
    return ", ".join(
        f"{table_alias}.{quote(field.column)} AS {quote(f'{prefix}__{field.attname}')}"
        for field in model._meta.concrete_fields
        if not wanted or field.attname in wanted
    )


def instance(model: type[Model], prefix: str, names: Sequence[str], row: Sequence) -> Model:
    """The ``model`` instance made of the ``<prefix>__*`` values of ``row`` (whose column
    names, in order, are ``names``: ``cursor.description``'s)."""
    start = f"{prefix}__"
    values = {n[len(start) :]: v for n, v in zip(names, row, strict=True) if n.startswith(start)}
    fields = [f for f in model._meta.concrete_fields if f.attname in values]
    converted = [_from_db(f, values[f.attname]) for f in fields]
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def _from_db(field, value):
    """``value`` as the ORM would hand it over (e.g. a JSON column decoded)."""
    if value is None or not hasattr(field, "from_db_value"):
        return value
    return field.from_db_value(value, None, connection)


def fetch_one(sql: str, params: Sequence) -> tuple[list[str], tuple] | None:
    """Run ``sql``; return its column names and first row, or None if it found no row."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        return None if row is None else ([c.name for c in cursor.description], row)


def quote(name: str) -> str:
    """A table or column name, quoted for SQL."""
    return connection.ops.quote_name(name)


def update(model: type[Model], values: Mapping[str, object], **where) -> int:
    """``UPDATE`` ``model``'s rows matching every ``where`` condition, ``name=value``
    (equal) or ``name__in=values`` (one of), setting ``values``; names are field names or
    attnames, values plain (an id, not a model instance). Returns the number of rows
    changed. Raises ValueError for any other lookup."""
    assignments, params = [], []
    for name, value in values.items():
        field = model._meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    conditions = []
    for key, value in where.items():
        name, _, lookup = key.partition("__")
        if lookup not in ("", "in"):
            raise ValueError(f"sql.update takes name= and name__in= conditions, not {key}=")
        field = model._meta.get_field(name)
        if lookup == "in":
            conditions.append(f"{quote(field.column)} = ANY(%s)")
            params.append([field.get_db_prep_value(v, connection) for v in value])
        else:
            conditions.append(f"{quote(field.column)} = %s")
            params.append(field.get_db_prep_value(value, connection))
    statement = (
        f"UPDATE {quote(model._meta.db_table)} SET {', '.join(assignments)}"
        f" WHERE {' AND '.join(conditions)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def insert(objects: Sequence[Model]) -> None:
    """``INSERT`` unsaved instances of one model in one statement (defaults and
    ``auto_now_add`` applied, primary keys left to the database and not read back)."""
    if not objects:
        return
    model = type(objects[0])
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [
        field.get_db_prep_save(field.pre_save(obj, add=True), connection)
        for obj in objects
        for field in fields
    ]
    names = ", ".join(quote(field.column) for field in fields)
    statement = (
        f"INSERT INTO {quote(model._meta.db_table)} ({names})"
        f" VALUES {', '.join([placeholders] * len(objects))}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
