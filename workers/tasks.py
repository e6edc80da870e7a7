"""Celery tasks: thin wrappers that load ids and call the engine or a step.

``update_build`` and ``run_target`` use ``acks_late`` with ``reject_on_worker_lost``; that
is safe because both are idempotent (claims and transitions are conditional updates). The
periodic tasks only hand work back to those two; a cancel hook may be called again.
"""

import logging

from celery import shared_task
from django.conf import settings

from builds import engine, locks, metrics
from builds.engine import dispatch
from builds.models import BuildTarget
from harbor import logformat
from workers import cancel_hooks
from workers.runner import execute_step, record_outcome

logger = logging.getLogger(__name__)

RETRIED = engine.INFRASTRUCTURE_ERRORS
RETRY_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": RETRIED,
    "retry_backoff": 0.5,
    "retry_backoff_max": 10,
    "retry_jitter": True,
    "max_retries": None,
}


# Steps one run_target task runs back to back, each claimed for it by the pass that followed
# the one before; then the next is queued like any other, so no task runs for ever.
HANDOFFS_PER_TASK = 20


@shared_task(**RETRY_OPTIONS)
def update_build(build_id: int) -> None:
    """Run engine passes over the build, or hand the update to the lock's holder."""
    with logformat.bind(build_id=build_id):
        engine.run_passes(build_id)


@shared_task(**RETRY_OPTIONS)
def run_target(target_id: int) -> None:
    """Claim the target, run its step, finish it, and run the build's pass here (or leave it
    to the lock's holder); then run the next target that pass claimed for this worker, if
    any, the same way.

    Running the pass here spares the broker an ``update_build`` round trip per step, and
    the pass's claim of the next target spares it a ``run_target`` and the target a claim
    of its own. Both are safe to lose: this task is acknowledged late, so if its worker
    dies after a finish commits, the task is delivered again, its claim is refused (the
    target is past ``building``) and that refusal fires ``update_build``; a target claimed
    for this worker and never run keeps a lease nobody renews, which the repair task finds
    once it lapses. A retry after an infrastructure error takes the same path."""
    with logformat.bind(target_id=target_id):
        claim = _claim(target_id)
    # The last step of the run passes without taking its next target: that one is queued
    # like any other, so no task runs for ever.
    for handoffs_left in reversed(range(HANDOFFS_PER_TASK)):
        if claim is None:
            return
        claim = _run_logged(claim, take_next=handoffs_left > 0)


def _claim(target_id: int) -> engine.Claim | None:
    """Claim target ``target_id`` for this worker (None if there is nothing to run)."""
    logger.info("build target %s: run_target started", target_id)
    # The task has reached a worker. Its mark stands (for the repair bound) while the claim
    # waits on row locks, so the repair does not take a pending target being claimed for a
    # lost one; once the claim is settled (made, or nothing to run) the mark goes, and if
    # this worker is lost from then on its lapsed lease is what the repair finds. A worker
    # lost mid-claim leaves a mark that expires after the bound.
    bound = settings.HARBOR_REPAIR_BOUND
    metrics.target_task_started(locks.take_target_queued(target_id, hold_seconds=bound))
    claim = engine.begin_target(target_id)
    locks.clear_target_queued([target_id])
    return claim


def _run_logged(claim: engine.Claim, take_next: bool) -> engine.Claim | None:
    """``_run_claimed``, logging with the target's and build's ids."""
    target = claim.target
    with logformat.bind(target_id=target.pk, build_id=target.build_id):
        return _run_claimed(claim, take_next)


def _run_claimed(claim: engine.Claim, take_next: bool) -> engine.Claim | None:
    """Run the claimed target's step and its build's pass; the claim that pass made for
    this worker (only when ``take_next``), or None."""
    target = claim.target
    logger.info(
        "build target %s of build %s: running step %s (%s), attempt %s",
        *(target.pk, target.build_id, target.step_key, target.step_type, claim.attempt),
    )
    outcome = execute_step(claim)
    if outcome.yield_seconds is not None:
        record_outcome(claim, outcome)  # postponed: the build did not change
        return None
    if not take_next:
        _finish_and_pass(claim, outcome)
        return None
    with dispatch.taking_one_target() as taken:
        try:
            _finish_and_pass(claim, outcome)
        except Exception:
            # A pass committed a claim for this worker before a later round failed. The
            # claim is this worker's, and nobody else may run the target while its lease
            # holds: run it now rather than leave it to lapse, then let the task retry.
            if taken:
                _run_logged(taken[0], take_next=False)
            raise
    return taken[0] if taken else None


def _finish_and_pass(claim: engine.Claim, outcome) -> None:
    """Finish the claimed target with its step's ``outcome`` and run its build's pass here.

    With the build's row free, the finish is made inside the pass, right after it locks the
    build (build, then target: the lock order), so one transaction finishes the target and
    reads it. With the row held, the pass goes through the Redis lock; with that lock busy
    too, the finish commits alone and the pass is left to the holder, which passes again
    after releasing (``engine.run_own_passes``).
    """

    def finish(build) -> None:
        engine.finish_in_pass(claim, outcome.error, outcome.failure, build)

    def finish_alone() -> None:
        record_outcome(claim, outcome, queue_update=False)

    try:
        engine.run_own_passes(claim.target.build_id, before=finish, if_busy=finish_alone)
    except Exception:
        # The step has run: its result must not be lost with a pass that failed. Commit the
        # finish alone (a finish that did commit is not made twice: it is conditional on
        # the claim's attempt), then let the task retry.
        finish_alone()
        raise


@shared_task(acks_late=True)
def repair_builds() -> None:
    """Hand back work whose follow-up was lost (run by Celery beat; see
    ``builds.engine.repair``): builds get an ``update_build`` unless one is already queued,
    targets a ``run_target`` (only those with none on the way)."""
    lost = engine.find_lost_work(settings.HARBOR_REPAIR_BOUND)
    if not lost.build_ids:
        # No build has work waiting for a pass: an old request (its task lost, with
        # nothing to do) is no sign of a stalled engine.
        locks.clear_engine_waiting()
    for build_id in lost.build_ids:
        logger.warning(
            "repair: build %s has work its lost update left; updating it",
            build_id,
            extra={"build_id": build_id},
        )
        dispatch.request_update(build_id)
    for target_id in lost.target_ids:
        logger.warning(
            "repair: build target %s has no run_target on the way; queueing one",
            target_id,
            extra={"target_id": target_id},
        )
    # Shown missing (``not_queued``), so few: they go ahead of any backlog of ordinary work.
    dispatch.run_targets(lost.target_ids, reclaim=True)
    metrics.repair_sent("update_build", len(lost.build_ids))
    metrics.repair_sent("run_target", len(lost.target_ids))


@shared_task(acks_late=True)
def expire_waits() -> None:
    """Fire ``update_build`` for builds with a waiting target past its ``wait_timeout``
    (run by Celery beat; the pass settles the target)."""
    for build_id in engine.builds_with_expired_waits():
        dispatch.request_update(build_id)


@shared_task(acks_late=True)
def announce_stuck_targets() -> None:
    """Announce each target past its step's ``stuck_after`` once (run by Celery beat; see
    ``builds.engine.stuck``): a ``target.stuck`` notification for the plans that ask."""
    for target_id in engine.unannounced_stuck_targets():
        engine.announce_stuck(target_id)


@shared_task(bind=True, acks_late=True, max_retries=None)
def call_cancel_hook(self, target_id: int) -> None:
    """Call an aborted target's cancel hook, retrying with exponential backoff (1, 2, 4 …
    seconds) up to ``HARBOR_CANCEL_HOOK_ATTEMPTS`` attempts in all."""
    target = BuildTarget.objects.filter(pk=target_id).first()
    if target is None:
        return
    attempt = self.request.retries + 1
    with logformat.bind(build_id=target.build_id, target_id=target_id):
        delivered = cancel_hooks.call_cancel_hook(target, attempt)
    if delivered:
        metrics.delivery_attempted("cancel_hook", "delivered")
        return
    if attempt < settings.HARBOR_CANCEL_HOOK_ATTEMPTS:
        metrics.delivery_attempted("cancel_hook", "retry")
        raise self.retry(countdown=2 ** (attempt - 1))
    metrics.delivery_attempted("cancel_hook", "failed")
