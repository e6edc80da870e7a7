"""Model instances from hand-written SQL that joins several tables (hot paths only).

``Model.objects.raw()`` builds instances of one model; a lookup that needs a row and its
related rows in one query (the API token and its user, a receiving build target with its
build and plan) selects each model's columns under a ``<prefix>__<attname>`` alias and
turns them into instances with Django's public ``Model.from_db``. Columns a query leaves out
are deferred, as with ``QuerySet.only()``: reading one costs a query, never a wrong value.
"""

from collections.abc import Iterable, Sequence

from django.db import connection
from django.db.models import Model


def columns(model: type[Model], table_alias: str, prefix: str, only: Iterable[str] = ()) -> str:
    """SQL select-list for ``model``'s concrete fields (or the attnames in ``only``, in
    model order), each as ``<table_alias>."<column>" AS "<prefix>__<attname>"``."""
    wanted = set(only)
    return ", ".join(
        f'{table_alias}."{field.column}" AS "{prefix}__{field.attname}"'
        for field in model._meta.concrete_fields
        if not wanted or field.attname in wanted
    )


def instance(model: type[Model], prefix: str, names: Sequence[str], row: Sequence) -> Model:
    """The ``model`` instance made of the ``<prefix>__*`` values of ``row`` (whose column
    names, in order, are ``names``: ``cursor.description``'s)."""
    start = f"{prefix}__"
    values = {n[len(start) :]: v for n, v in zip(names, row, strict=True) if n.startswith(start)}
    attnames = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(connection.alias, attnames, [values[a] for a in attnames])


def fetch_one(sql: str, params: Sequence) -> tuple[list[str], tuple] | None:
    """Run ``sql``; return its column names and first row, or None if it found no row."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        return None if row is None else ([c.name for c in cursor.description], row)
