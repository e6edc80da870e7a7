"""The target worker's transitions: claim a target, renew its lease, finish it.

The worker moves a target in every state but ``waiting`` (D8788; docs/harbormaster.md §1.5), outside
the engine's passes. It takes the build's row lock only for the moves that send
``build_changed`` (into ``waiting`` or ``failed``), before the target's: a claim never waits
for a pass. Claims carry an attempt number and a lease: a finish counts only for the
claim that is still current, so a duplicate ``run_target`` delivery or a worker that
stalled past its lease cannot finish a target another claim now owns.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from builds import logs
from builds.approvals import APPROVAL
from builds.engine import dispatch, rows
from builds.engine.retries import retries_when_lost
from builds.engine.transitions import build_changed, move_target
from builds.models import Build, BuildTarget, StatusEvent

logger = logging.getLogger(__name__)

T = BuildTarget.Status
WORKER = StatusEvent.Cause.WORKER


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a target: the target as claimed and the claim's attempt number."""

    target: BuildTarget
    attempt: int


def begin_target(target_id: int) -> Claim | None:
    """Claim target ``target_id`` for running: ``pending → building``, or a ``building``
    target whose lease has expired, with a new attempt number and lease.

    Returns None when there is nothing to run: the target is unknown or past ``building``,
    its lease is still held, it belongs to an older generation or a complete build (then
    it is moved to ``aborted``, as Harbormaster's TargetWorker does, docs/harbormaster.md §1.9),
    or its claim lapsed once too often (then it is ``failed``, ``_give_up``); in those cases
    ``update_build`` is fired after commit here, as the finish would have.
    """
    with transaction.atomic():
        target = rows.lock_claimed_target(target_id)
        if target is None:
            return None
        now = timezone.now()
        if not _gives_up(target, now):
            # The common path, a claim, locks only the target: claims never wait for passes.
            return _settle(target, now)
        build_id = target.build_id
    # Giving up fails the target, and a target failing sends ``build_changed``, which must
    # hold the build's row lock so the build's notifications are numbered in the order of
    # its changes. The target's lock is already held, and the lock order is build, then
    # target: so this transaction ends having written nothing, and another takes both
    # locks in order and decides again on the target as it is then.
    with transaction.atomic():
        if not Build.objects.select_for_update(no_key=True).filter(pk=build_id).exists():
            return None
        target = rows.lock_claimed_target(target_id)
        return None if target is None else _settle(target, timezone.now())


def claim_created_target(target: BuildTarget) -> Claim | None:
    """Claim ``target`` for the worker running the engine pass that just created it
    ``pending`` in this transaction (``target.build`` set, its row locked by the pass): the
    same conditional ``pending → building`` as ``begin_target``'s, with attempt 1 and a
    lease. None if it cannot be claimed (a concurrency group's target not admitted)."""
    return _claim(target, timezone.now())


def _settle(target: BuildTarget, now) -> Claim | None:
    """Claim the locked ``target``, or settle why not; an update is requested if not."""
    claim = _claim(target, now)
    if claim is None:
        request_update(target.build_id)
    return claim


def _claim(target: BuildTarget, now) -> Claim | None:
    if not _claimable(target, now):
        return None
    reason = _abandoned_reason(target)
    if reason:
        move_target(target, T.ABORTED, WORKER, detail=reason)
        return None
    if _gives_up(target, now):
        _give_up(target)
        return None
    reclaimed = target.status == T.BUILDING
    resumed = reclaimed and target.resume_after is not None
    lost = reclaimed and not resumed
    moved = move_target(
        target,
        T.BUILDING,
        WORKER,
        on_attempt=target.attempt,
        detail=f"claimed again: attempt {target.attempt}'s lease expired" if reclaimed else "",
        record=not resumed,
        attempt=target.attempt + 1,
        # A plain value is safe: the UPDATE applies only on the attempt it was read with.
        lost_claims=target.lost_claims + int(lost),
        lease_expires=now + timedelta(seconds=settings.HARBOR_TARGET_LEASE),
        resume_after=None,
        date_started=target.date_started or now,
    )
    return Claim(target, target.attempt) if moved else None


def _gives_up(target: BuildTarget, now) -> bool:
    """Whether a claim of the locked ``target`` at ``now`` would fail it rather than claim
    it: its lease lapsed (it was not postponed) once more than ``HARBOR_TARGET_MAX_LOST``
    times, or its step retries ``lost`` attempts. Decided on the same row and ``now`` as
    ``_claim``, so a claim made without the build's lock never gives up."""
    lost = target.status == T.BUILDING and target.resume_after is None
    return (
        lost
        and _claimable(target, now)
        and not _abandoned_reason(target)
        and (target.lost_claims >= settings.HARBOR_TARGET_MAX_LOST or retries_when_lost(target))
    )


def _give_up(target: BuildTarget) -> None:
    """Fail a target whose step keeps losing its worker (e.g. it crashes the worker), rather
    than run it for ever; or, when its step retries ``lost`` attempts, at the first lapse,
    so the retry runs as a new attempt with logs of its own. The caller holds the build's
    row lock, which the failure's ``build_changed`` needs (``begin_target``)."""
    if retries_when_lost(target):
        reason = f"lost its worker: claim {target.attempt}'s lease expired"
    else:
        reason = (
            f"gave up: the step lost its worker {settings.HARBOR_TARGET_MAX_LOST + 1} times "
            f"(attempt {target.attempt}'s lease expired too)"
        )
    lost = BuildTarget.Failure.LOST
    if move_target(
        target, T.FAILED, WORKER, on_attempt=target.attempt, detail=reason, failure=lost
    ):
        logs.write(target, "harbor", "error", reason.capitalize() + ".")


def _abandoned_reason(target: BuildTarget, build: Build | None = None) -> str:
    build = build or target.build
    if target.generation != build.generation:
        return "the build was restarted"
    if build.status in Build.COMPLETE:
        return f"the build is {build.status}"
    return ""


def _claimable(target: BuildTarget, now) -> bool:
    if target.status == T.PENDING:
        # A target of a concurrency group runs only once the engine admitted it (under the
        # group's lock, builds.engine.concurrency); admission is never undone.
        return not target.concurrency_group or target.date_admitted is not None
    return target.status == T.BUILDING and (
        target.lease_expires is None or target.lease_expires <= now
    )


def renew_lease(claim: Claim) -> bool:
    """Extend the claim's lease; False if the claim is no longer current (the target was
    aborted, finished, or claimed again), which tells a running step to stop."""
    expires = timezone.now() + timedelta(seconds=settings.HARBOR_TARGET_LEASE)
    return bool(
        BuildTarget.objects.filter(
            pk=claim.target.pk, status=T.BUILDING, attempt=claim.attempt
        ).update(lease_expires=expires)
    )


def postpone_target(claim: Claim, seconds: float) -> bool:
    """Let the claimed target's step run again in ``seconds`` without holding a worker
    meanwhile (Harbormaster's ``PhabricatorWorkerYieldException``, docs/harbormaster.md §1.9): the
    target stays ``building``, its lease is set to lapse then, and ``run_target`` is queued for
    then; the next claim resumes it. If the worker that would run it is lost, the lapsed
    lease is what the repair task looks for. Returns False if the claim was no longer
    current (nothing is queued then)."""
    resume_after = timezone.now() + timedelta(seconds=seconds)
    target_id = claim.target.pk
    with transaction.atomic():
        postponed = BuildTarget.objects.filter(
            pk=target_id, status=T.BUILDING, attempt=claim.attempt
        ).update(lease_expires=resume_after, resume_after=resume_after)
        if postponed:
            transaction.on_commit(lambda: dispatch.run_target(target_id, countdown=seconds))
    return bool(postponed)


def claim_is_current(claim: Claim) -> bool:
    """True while the claim still owns its target (not aborted, finished or claimed again)."""
    return BuildTarget.objects.filter(
        pk=claim.target.pk, status=T.BUILDING, attempt=claim.attempt
    ).exists()


def finish_target(
    claim: Claim,
    error: str | None = None,
    failure: str = BuildTarget.Failure.FAILED,
    *,
    queue_update: bool = True,
) -> bool:
    """Finish the claimed target: ``failed`` with ``error`` written to its log when given
    (and ``failure``, a ``BuildTarget.Failure``, recorded: what a step's ``retry.on``
    matches), else ``waiting`` if its step waits for a message, else ``passed``.
    Conditional on the claim's attempt; fires ``update_build`` after commit whether or not
    it moved the target, unless ``queue_update`` is False: then the caller runs the build's
    pass itself after this returns, or leaves it to the Redis lock's holder
    (``locks.run_exclusively``'s ``if_busy``).
    A target that would wait, but whose build completed or restarted while its step ran, is
    ``aborted`` instead: no pass would ever consume its verdicts (one accepted while it ran
    would stay unconsumed) and it would wait for ever. Returns True if this call moved the
    target."""
    with transaction.atomic():
        moved = _finish(claim, error, failure, build=None)
        if queue_update:
            request_update(claim.target.build_id)
    return moved


def finish_in_pass(claim: Claim, error: str | None, failure: str, build: Build) -> bool:
    """``finish_target`` made inside the engine pass over the target's build that the
    finishing worker runs itself, right after the pass locked ``build`` (``run_pass``'s
    ``before``): one transaction for the finish and the pass that reads it. Returns True if
    this call moved the target."""
    return _finish(claim, error, failure, build=build)


def _finish(claim: Claim, error: str | None, failure: str, build: Build | None) -> bool:
    """The finish, in the caller's transaction; ``build`` is the target's build if its row
    is locked already (by the pass), else None."""
    target = claim.target
    fields = {}
    detail = error.splitlines()[0][:200] if error else ""
    if error is not None:
        outcome = T.FAILED
        fields["failure"] = failure
    elif target.wait_for_message:
        outcome = T.WAITING
        fields["wait_deadline"] = wait_deadline(target)
    else:
        outcome = T.PASSED
    if outcome in (T.WAITING, T.FAILED):
        # Both moves send ``build_changed``, which must hold the build's row lock: the rows
        # its receivers write are then numbered in the order of the build's changes, and the
        # build they are given (this one, read under the lock) stays as read until the
        # commit. Lock order build, then target. A finish into ``passed`` sends nothing and
        # locks only the target (or the pass it is made in locked the build already).
        build = build or (
            Build.objects.select_for_update(no_key=True)
            .only("status", "generation", "plan")
            .get(pk=target.build_id)
        )
        target.build = build
    if outcome == T.WAITING:
        # A pass that completes the build either committed before this (seen here) or runs
        # after (and sees the target waiting).
        reason = _abandoned_reason(target, build)
        if reason:
            outcome, detail, fields = T.ABORTED, reason, {}
    moved = move_target(target, outcome, WORKER, on_attempt=claim.attempt, detail=detail, **fields)
    if moved and outcome == T.WAITING:
        # It now waits for this target's verdict.
        build_changed.send(Build, build=build, target=target)
    if moved and error is not None:
        logs.write(target, "harbor", "error", error)
    elif not moved:
        _log_discarded_result(claim, outcome, detail)
    return moved


def _log_discarded_result(claim: Claim, outcome: str, detail: str) -> None:
    """Say on the target's log that a finish came too late to count: its claim had lapsed
    and another was made, or the target was settled (aborted, say) meanwhile. Without it,
    a worker that was cut off past its lease would see its step's result vanish."""
    now = BuildTarget.objects.filter(pk=claim.target.pk).values("status", "attempt").first()
    if now is None or (now["attempt"], now["status"]) == (claim.attempt, outcome):
        return  # gone, or this very result is recorded (a retried finish whose commit went through)
    result = f"{outcome}: {detail}" if detail else outcome
    text = (
        f"Attempt {claim.attempt} finished ({result}), but its claim was no longer current: "
        f"the target is {now['status']}, on attempt {now['attempt']}. This result was "
        "discarded."
    )
    logs.write(claim.target, "harbor", "discarded", text)
    ids = {"build_id": claim.target.build_id, "target_id": claim.target.pk}
    logger.warning("build target %s: %s", claim.target.pk, text, extra=ids)


def wait_deadline(target: BuildTarget):
    """When a target that starts waiting now stops waiting: now plus its step's
    ``wait_timeout`` (seconds), else ``HARBOR_DEFAULT_WAIT_TIMEOUT``, or None to wait for
    ever (Harbormaster always waits)."""
    timeout = wait_timeout(target)
    return timezone.now() + timedelta(seconds=float(timeout)) if timeout else None


def wait_timeout(target: BuildTarget) -> float | None:
    """Seconds ``target`` may wait for a message: its step's ``wait_timeout``, else
    ``HARBOR_DEFAULT_WAIT_TIMEOUT`` (but for an approval: a person's decision may take
    days, and the default bounds outside systems that hang); None for no limit."""
    own = target.config.get("wait_timeout")
    if own or target.step_type == APPROVAL:
        return own or None
    return settings.HARBOR_DEFAULT_WAIT_TIMEOUT


def request_update(build_id: int) -> None:
    """Fire ``update_build`` for ``build_id`` once the current transaction commits (at once
    when there is none), unless one is queued and not yet started.

    If Redis or the broker is down then, the failure is logged, not raised: what asked for
    the update has committed (a sender's message must be answered as stored), and the
    repair task finds a build whose update was lost (``builds.engine.repair``)."""
    transaction.on_commit(lambda: dispatch.request_update(build_id), robust=True)
