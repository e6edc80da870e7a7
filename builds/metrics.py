"""Harbor's Prometheus counters (``prometheus_client``), counted where the events happen;
``harbor/metrics.py`` serves them at ``/metrics``.

Each process counts in its own memory, or, with ``PROMETHEUS_MULTIPROC_DIR`` set before it
starts, in files in that directory, which ``/metrics`` adds up over every process of the
host (gunicorn's workers and Celery's). Counting never queries the database: callers pass
what they already hold. Counts of what a transaction did are made after it commits, so a
rolled-back pass or message counts nothing.
"""

import time
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from prometheus_client import Counter, Histogram

from builds.models import BuildMessage

BUILDS_STARTED = Counter("harbor_builds_started", "Builds started, by plan id.", ["plan_id"])
BUILDS_COMPLETED = Counter(
    "harbor_builds_completed", "Builds that reached a complete status.", ["plan_id", "status"]
)
MESSAGES_RECEIVED = Counter(
    "harbor_messages_received",
    "Messages received by the engine, by type and reply (accepted, duplicate, refused).",
    ["type", "reply"],
)
ENGINE_PASS_SECONDS = Histogram(
    "harbor_engine_pass_seconds",
    "Duration of committed engine passes, in seconds (its _count is the number of passes).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TARGETS_COMPLETED = Counter(
    "harbor_targets_completed",
    "Build targets that reached a complete status, by step type and status (outcome).",
    ["step_type", "status"],
)
MESSAGE_DECISION_SECONDS = Histogram(
    "harbor_message_decision_seconds",
    "Seconds from a pass/fail message's receipt to the engine pass that consumed it.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
TARGET_QUEUE_WAIT_SECONDS = Histogram(
    "harbor_target_queue_wait_seconds",
    "Seconds a run_target task waited between its due time and a worker starting it.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
DELIVERIES = Counter(
    "harbor_deliveries",
    "Attempts to deliver to an outside system, by kind (commit_status, cancel_hook) and "
    "result (delivered, retry, failed).",
    ["kind", "result"],
)
REPAIR_ACTIONS = Counter(
    "harbor_repair_actions",
    "Follow-ups the repair task sent, by kind (update_build, run_target).",
    ["kind"],
)
# Message types are the sender's input: anything else is counted as "other", so a sender
# cannot grow the number of series.
MESSAGE_TYPES = frozenset(BuildMessage.Type.values)


def after_commit(count) -> None:
    """Run ``count`` (a no-argument callable) once the current transaction commits, or now
    outside one; it is dropped if the transaction rolls back."""
    transaction.on_commit(count, robust=True)


def build_started(plan_id: int) -> None:
    """Count a build of plan ``plan_id`` started (inside its creating transaction)."""
    after_commit(BUILDS_STARTED.labels(plan_id=str(plan_id)).inc)


def build_completed(plan_id: int, status: str) -> None:
    """Count a build of plan ``plan_id`` moved into the complete ``status``."""
    after_commit(BUILDS_COMPLETED.labels(plan_id=str(plan_id), status=status).inc)


def message_received(message_type: str, reply: str) -> None:
    """Count a message of ``message_type`` answered with ``reply`` (accepted, duplicate,
    refused). A refusal stored nothing, so it counts at once."""
    kind = message_type if message_type in MESSAGE_TYPES else "other"
    counter = MESSAGES_RECEIVED.labels(type=kind, reply=reply)
    if reply == "refused":
        counter.inc()
    else:
        after_commit(counter.inc)


def engine_pass_finished(seconds: float) -> None:
    """Count a committed engine pass that took ``seconds``."""
    ENGINE_PASS_SECONDS.observe(seconds)


def target_completed(step_type: str, status: str) -> None:
    """Count a build target of ``step_type`` moved into the complete ``status``."""
    after_commit(TARGETS_COMPLETED.labels(step_type=step_type, status=status).inc)


def message_decided(received_at: datetime) -> None:
    """Count a verdict received at ``received_at`` (aware) and consumed by the current
    pass, with the seconds from its receipt to the pass's commit."""
    after_commit(lambda: MESSAGE_DECISION_SECONDS.observe(_seconds_since(received_at)))


def target_task_started(due_at: float | None) -> None:
    """Count a ``run_target`` started by a worker, due at ``due_at`` (seconds since the
    epoch; None when unknown, then nothing is counted)."""
    if due_at is not None:
        TARGET_QUEUE_WAIT_SECONDS.observe(max(time.time() - due_at, 0.0))


def delivery_attempted(kind: str, result: str) -> None:
    """Count one attempt to deliver ``kind`` (``commit_status``, ``notification``,
    ``cancel_hook``) with ``result`` (``delivered``, ``retry``: failed and tried again later,
    ``failed``: given up). Call it once the attempt is recorded."""
    DELIVERIES.labels(kind=kind, result=result).inc()


def _seconds_since(moment: datetime) -> float:
    return max((timezone.now() - moment).total_seconds(), 0.0)


def repair_sent(kind: str, count: int) -> None:
    """Count ``count`` follow-ups of ``kind`` (``update_build``, ``run_target``) sent by the
    repair task."""
    if count:
        REPAIR_ACTIONS.labels(kind=kind).inc(count)
