"""Harbor's log lines as JSON (``HARBOR_LOG_FORMAT=json``), with the ids of the build and
build target a line concerns.

Ids come from the line's ``extra`` (``logger.warning(..., extra={"build_id": 7})``) or, for
every line logged while a task works on a build or target, from ``bind``, which the Celery
tasks wrap around their work: code below them (the engine, the steps, Django, requests)
need not pass the ids along. ``ContextFilter`` copies the bound ids onto each record and
``JsonFormatter`` writes one JSON object a line. Plain text stays the default.
"""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from celery import current_task

# The ids a line may carry, in the order they are written.
ID_FIELDS = ("build_id", "target_id", "delivery_id")

_bound: ContextVar[dict[str, int]] = ContextVar("harbor_log_ids", default={})  # noqa: B039


@contextmanager
def bind(**ids: int | None) -> Iterator[None]:
    """Attach ``ids`` (``build_id=``, ``target_id=``, ``delivery_id=``; None ones are
    skipped) to every line logged inside the block, in this thread or task, on top of those
    bound by an enclosing block."""
    unknown = set(ids) - set(ID_FIELDS)
    if unknown:
        raise TypeError(f"unknown log ids: {sorted(unknown)}")
    token = _bound.set(_bound.get() | {k: v for k, v in ids.items() if v is not None})
    try:
        yield
    finally:
        _bound.reset(token)


class ContextFilter(logging.Filter):
    """Copies the ids bound by ``bind`` onto each record that has none of its own (a line's
    ``extra`` wins). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _bound.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, the ids the record carries, the Celery ``task`` and ``task_id`` it ran in,
    and ``exception`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line |= {name: getattr(record, name) for name in ID_FIELDS if hasattr(record, name)}
        line |= _task_fields()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def _task_fields() -> dict[str, str]:
    task = current_task
    if not task or task.request.id is None:
        return {}
    return {"task": task.name, "task_id": task.request.id}


def use_json(logger: logging.Logger) -> None:
    """Switch every handler of ``logger`` to ``JsonFormatter`` with ``ContextFilter``. For
    the Celery worker, whose own logging setup replaces Django's ``LOGGING`` handlers
    (``harbor/celery.py`` calls it once that setup is done)."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
        handler.addFilter(ContextFilter())
