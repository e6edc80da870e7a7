"""The build engine: the one place that changes a build's, target's or buildable's status.

Views, tasks and commands call these functions; they never write a status themselves
(docs/design.md §2–3). Everything here is safe to replay.
"""

import logging
import time
from collections.abc import Callable

import kombu.exceptions
import redis
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, transaction

from builds import metrics
from builds.engine.buildables import aggregate_status, update_buildable
from builds.engine.commands import command_refusal, derived_status
from builds.engine.messages import (
    InvalidMessage,
    MessageRefused,
    Receipt,
    ReceiverNotFound,
    receive_message,
)
from builds.engine.passes import PassResult, run_pass
from builds.engine.repair import LostWork, find_lost_work
from builds.engine.reruns import dependents as rerun_dependents
from builds.engine.starting import PlanNotRunnable, find_or_create_buildable, start_build
from builds.engine.stuck import announce_stuck, unannounced_stuck_targets
from builds.engine.targets import (
    Claim,
    begin_target,
    claim_is_current,
    finish_in_pass,
    finish_target,
    postpone_target,
    renew_lease,
    request_update,
)
from builds.engine.timeouts import builds_with_expired_waits
from builds.engine.transitions import move_build
from builds.models import Build, StatusEvent

logger = logging.getLogger(__name__)

# What an unreachable or restarting database, Redis or broker raises: the web answers 503
# (``messages_api/outage.py``).
OUTAGE_ERRORS = (
    OperationalError,
    InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
    kombu.exceptions.OperationalError,
)
# Failures of the machinery rather than of Harbor's logic: the pass is rolled back (or, for
# the broker's errors when queueing targets after the commit, was committed and is safe to
# run again) and the task retries. An IntegrityError can only come from a duplicate insert,
# which a retried pass will not repeat; none of these may set the build to ``error``.
INFRASTRUCTURE_ERRORS = (*OUTAGE_ERRORS, IntegrityError)

__all__ = [
    "INFRASTRUCTURE_ERRORS",
    "OUTAGE_ERRORS",
    "Claim",
    "InvalidMessage",
    "LostWork",
    "MessageRefused",
    "PassResult",
    "PlanNotRunnable",
    "Receipt",
    "ReceiverNotFound",
    "aggregate_status",
    "announce_stuck",
    "begin_target",
    "builds_with_expired_waits",
    "claim_is_current",
    "command_refusal",
    "derived_status",
    "find_or_create_buildable",
    "find_lost_work",
    "finish_in_pass",
    "finish_target",
    "postpone_target",
    "receive_message",
    "renew_lease",
    "request_update",
    "rerun_dependents",
    "start_build",
    "unannounced_stuck_targets",
    "update_build",
    "update_buildable",
]


def update_build(
    build_id: int, before: Callable[[Build], object] | None = None
) -> PassResult | None:
    """Run one engine pass over build ``build_id`` (see ``builds.engine.passes``; ``before``
    as ``run_pass`` takes it).

    Returns the pass's result, or None if the build no longer exists. Infrastructure errors
    propagate unchanged for the caller to retry. Any other exception is a bug in Harbor: the
    build is set to ``error`` (Harbormaster's ``continueBuild``, docs/harbormaster.md §1.6) and the
    exception re-raised.
    """
    started = time.monotonic()
    try:
        result = run_pass(build_id, before)
    except Build.DoesNotExist:
        return None
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        logger.exception("engine pass over build %s failed", build_id, extra={"build_id": build_id})
        _mark_error(build_id, exc)
        raise
    metrics.engine_pass_finished(time.monotonic() - started)
    return result


def _mark_error(build_id: int, exc: Exception) -> None:
    try:
        with transaction.atomic():
            build = Build.objects.select_for_update(no_key=True).get(pk=build_id)
            move_build(
                build,
                Build.Status.ERROR,
                StatusEvent.Cause.ENGINE,
                detail=f"{type(exc).__name__}: {exc}",
            )
    except DatabaseError:
        logger.exception("could not mark build %s as error", build_id, extra={"build_id": build_id})
