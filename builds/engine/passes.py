"""One engine pass over a build: the only code that decides a build's status.

Follows ``HarbormasterBuildEngine::continueBuild`` / ``updateBuild`` / ``updateBuildSteps``
(docs/harbormaster.md §1.6–1.7) with the changes of docs/design.md §3.3. A pass is one transaction
whose first statement locks the build row, so passes of one build take turns in PostgreSQL whatever
happens to the Redis lock; every write in it is conditional and counted. A build's first pass
runs in the transaction that creates the build, whose row no other transaction can see yet
(``builds.engine.starting``, docs/design.md §3.8).

Row locks are always taken in this order: build, then target, then message rows. The build
row is locked ``FOR NO KEY UPDATE``: it serialises passes and commands, yet lets message and
event inserts (whose foreign keys take ``KEY SHARE`` on the build) proceed during a pass.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from builds import metrics
from builds.approvals import APPROVAL, approval_variables
from builds.engine import concurrency, dispatch, retries, rows
from builds.engine.buildables import update_buildable
from builds.engine.commands import abort_targets, apply_commands
from builds.engine.targets import claim_created_target
from builds.engine.transitions import events_in_one_insert, move_build, move_target, record_event
from builds.models import Build, BuildMessage, BuildTarget, StatusEvent
from builds.variables import snapshot_variables

B = Build.Status
T = BuildTarget.Status
ENGINE = StatusEvent.Cause.ENGINE
MESSAGE = StatusEvent.Cause.MESSAGE


@dataclass(frozen=True)
class PassResult:
    """What a pass saw and left: the build's status before and after, its generation, and
    the ids of the targets to queue after the commit: those it created, but for targets of
    a concurrency group, those it admitted to their group (``builds.engine.concurrency``),
    and but the one it claimed for the worker running it (``_hand_over``)."""

    build_id: int
    old_status: str
    new_status: str
    generation: int
    created_target_ids: tuple[int, ...] = ()

    @property
    def completion_changed(self) -> bool:
        """Whether the build became complete or stopped being complete: the only moves that
        can change its buildable's status (``aggregate_status`` tells the statuses of an
        incomplete build apart from nothing else)."""
        return (self.old_status in Build.COMPLETE) != (self.new_status in Build.COMPLETE)


def run_pass(
    build_id: int, before: Callable[[Build], object] | None = None, wait: bool = True
) -> PassResult:
    """Run one engine pass over build ``build_id`` in its own transaction; ``before(build)``
    first, if given, right after the build's row is locked (a finishing worker's finish,
    ``targets.finish_in_pass``: the pass then reads it, and both commit together). With
    ``wait=False``, raises ``rows.BuildLocked`` instead of waiting for another transaction
    holding the build's row.

    The buildable's status is recomputed in the same transaction when the build became
    complete or left a complete status (its row is locked after the build's, the lock order
    of docs/design.md §3.2), and the pass's status events are written in one insert. Raises
    ``Build.DoesNotExist`` for an unknown id; database errors propagate (the caller
    retries). The targets it created are queued to run after the commit.
    """
    with transaction.atomic(), events_in_one_insert():
        # Of the plan and the buildable, only what a pass reads comes with the build, in
        # the statement that locks it: the plan's webhooks and what commands check, the
        # buildable's fields new targets' variables name (a primary-key join costs every
        # pass less than the statement it spares each pass that creates targets). The
        # initiator is read only when needed (new targets of a build a person started).
        build = rows.lock_build(build_id, wait)
        if before is not None:
            before(build)
        # ``work`` messages are never consumed, so the pass never reads them: a build that
        # has received thousands costs a pass no more than one that has received none.
        return pass_over(build, rows.unconsumed_messages(build_id))


def pass_over(
    build: Build, messages: list[BuildMessage], targets: list[BuildTarget] | None = None
) -> PassResult:
    """The pass itself over ``build``, whose row the caller's transaction holds locked (or
    has just created: no other transaction can see it yet), given its unconsumed verdicts
    and commands (``messages``, in id order) and, if the caller knows them, every attempt
    of the run the pass acts on (``targets``, none for a new build; read here when None).
    Call it inside ``events_in_one_insert``. Returns what ``run_pass`` returns; database
    errors propagate."""
    old_status = build.status
    apply_commands(build, [m for m in messages if m.type in BuildMessage.COMMANDS])
    if build.status == B.PENDING:
        move_build(build, B.BUILDING, ENGINE, generation=build.generation + 1)
    verdicts = [m for m in messages if m.type in BuildMessage.VERDICTS]
    created = _update_steps(build, verdicts, targets) if build.status == B.BUILDING else ()
    _retire_verdicts(verdicts)
    # Whatever the build's status now: an aborted or failed build frees its slots too.
    concurrency.release_slots(build)
    result = PassResult(build.pk, old_status, build.status, build.generation, created)
    if result.completion_changed:
        update_buildable(build.buildable_id)
    if created:
        # Each target is queued once, by the pass that created it. Queueing every pending
        # target after every pass (to pick up one a crash left unqueued) fed a loop in wide
        # builds: each redundant run_target asked for another pass, which queued them all
        # again. A target whose task was lost is the repair task's to find. If the broker
        # fails now, the pass has committed all the same: the failure is logged and the
        # repair finds the unqueued targets.
        transaction.on_commit(lambda: dispatch.run_targets(list(created)), robust=True)
    return result


def _update_steps(
    build: Build, verdicts: list[BuildMessage], attempts: list[BuildTarget] | None
) -> tuple[int, ...]:
    """Settle verdicts and timeouts, then fail, pass or deadlock the build or create its
    runnable targets (``attempts``: the run's targets, every attempt, or None to read
    them). Returns the ids of the targets to queue: those created outside any concurrency
    group, and those admitted to their group now, less the one handed to the worker
    running the pass."""
    if attempts is None:
        attempts = rows.generation_targets(build.pk, build.generation)
    targets = {t.step_key: t for t in attempts if not t.superseded_by}
    _consume_verdicts(targets.values(), verdicts)
    _expire_waits(targets.values())
    retries.retry_failed_targets(targets)
    steps = build.plan_snapshot
    status = classify_steps(steps, targets)
    if status.failed:
        detail = f"step {status.failed[0]} failed"
        move_build(build, B.FAILED, ENGINE, detail=detail)
        # Beyond Harbormaster: nothing is left pending or waiting for ever in a failed
        # build. Steps still running finish, and their results are kept.
        unfinished = [t for t in targets.values() if t.status in (T.PENDING, T.WAITING)]
        abort_targets(unfinished, ENGINE, f"the build failed: {detail}")
    elif len(status.complete) == len(steps):
        move_build(build, B.PASSED, ENGINE)
    elif not status.runnable and not status.waiting and not status.underway:
        move_build(build, B.DEADLOCKED, ENGINE, detail="no step can run")
    else:
        earlier = retries.latest_superseded(attempts)
        # A target of a concurrency group is queued to run only once admitted to it; a
        # retry's or rerun's new attempt is a new target and goes through admission too.
        created = _create_targets(build, status.runnable, earlier)
        startable = concurrency.startable(build, created)
        handed = _hand_over(build, [t for t in created if t.pk in startable])
        return tuple(pk for pk in startable if pk != handed)
    return ()


def _hand_over(build: Build, startable: list[BuildTarget]) -> int | None:
    """Claim the first of ``startable`` (created by this pass, free to run) for the worker
    running this pass, if it waits for its next target (``dispatch.taking_one_target``);
    return its id, or None. The claim is the conditional move a worker's own claim makes,
    here in the pass's transaction, under the build's row lock (build, then target: the
    lock order), so the step starts without a transaction of its own; it commits with the
    pass or not at all, and the worker gets it only after the commit."""
    if not startable or not dispatch.wants_a_target():
        return None
    target = startable[0]
    target.build = build
    claim = claim_created_target(target)
    if claim is None:
        return None
    dispatch.hand_over(claim)
    return target.pk


def _consume_verdicts(targets, verdicts: list[BuildMessage]) -> None:
    """Settle each waiting target by its lowest-id unconsumed pass/fail message (the first
    received wins, as Harbormaster's emergent order gives, docs/harbormaster.md §1.7); the later
    verdicts for that target are consumed as superseded. ``work`` messages are never consumed."""
    waiting = {t.pk: t for t in targets if t.status == T.WAITING}
    by_target: dict[int, list[BuildMessage]] = {}
    for message in verdicts:
        if message.target_id in waiting:
            by_target.setdefault(message.target_id, []).append(message)
    now = timezone.now()
    for target_id, messages in by_target.items():
        first, *later = messages
        outcome = T.PASSED if first.type == BuildMessage.Type.PASS else T.FAILED
        failure = BuildTarget.Failure.FAILED if outcome == T.FAILED else ""
        consumed = BuildMessage.objects.filter(pk=first.pk, is_consumed=False).update(
            is_consumed=True, date_consumed=now, outcome=f"target {outcome}"
        )
        if not consumed:
            continue
        if later:
            BuildMessage.objects.filter(pk__in=[m.pk for m in later], is_consumed=False).update(
                is_consumed=True,
                date_consumed=now,
                outcome=f"no effect: message {first.pk} decided",
            )
        for message in messages:
            message.is_consumed = True
        values = ", ".join(f"{name}={value}" for name, value in sorted(first.fields.items()))
        detail = f"with {values}" if values else ""
        move_target(
            waiting[target_id], outcome, MESSAGE, message=first, failure=failure, detail=detail
        )
        metrics.message_decided(first.date_created)


def _retire_verdicts(verdicts: list[BuildMessage]) -> None:
    """Consume, as having had no effect, the verdicts this pass read whose target is now
    complete (it failed on its own, or was aborted), so a sender polling its message learns
    that it will never count. Verdicts for targets not yet waiting stay for later."""
    verdicts = [m for m in verdicts if not m.is_consumed]  # those this pass did not settle
    target_ids = {m.target_id for m in verdicts}
    if not target_ids:
        return
    complete = dict(
        BuildTarget.objects.filter(pk__in=target_ids, status__in=BuildTarget.COMPLETE).values_list(
            "pk", "status"
        )
    )
    for status in set(complete.values()):
        retired = [m.pk for m in verdicts if complete.get(m.target_id) == status]
        BuildMessage.objects.filter(pk__in=retired, is_consumed=False).update(
            is_consumed=True,
            date_consumed=timezone.now(),
            outcome=f"no effect: the target was already {status}",
        )


def _expire_waits(targets) -> None:
    """Beyond Harbormaster: a waiting target whose ``wait_deadline`` has passed (its step's
    ``wait_timeout`` or ``HARBOR_DEFAULT_WAIT_TIMEOUT``) settles with its step's
    ``on_timeout`` outcome (``fail`` unless ``pass``). Runs after verdicts are
    consumed, so a message received before the pass still wins over the timeout."""
    now = timezone.now()
    for target in targets:
        if target.status != T.WAITING or not target.wait_deadline or target.wait_deadline > now:
            continue
        outcome = T.PASSED if target.config.get("on_timeout") == "pass" else T.FAILED
        timeout = target.config.get("wait_timeout")
        waited = f"{timeout} s" if timeout else "HARBOR_DEFAULT_WAIT_TIMEOUT's seconds"
        move_target(
            target,
            outcome,
            StatusEvent.Cause.TIMEOUT,
            detail=f"timed out after waiting {waited} for a message",
            failure=BuildTarget.Failure.TIMEOUT if outcome == T.FAILED else "",
        )


@dataclass
class StepStatus:
    complete: list[str]
    failed: list[str]
    waiting: list[str]
    underway: list[str]
    runnable: list[dict]


def classify_steps(steps: list[dict], targets: dict[str, BuildTarget]) -> StepStatus:
    """Sort a build's steps by their current-generation targets (``targets`` by step key)
    into complete, failed, waiting and underway, and list the runnable ones: no target yet
    and every dependency complete (``updateBuildSteps``,
    docs/harbormaster.md §1.6 steps 4 and 8)."""
    status = StepStatus([], [], [], [], [])
    for step in steps:
        target = targets.get(step["key"])
        if target is None:
            continue
        if target.status in BuildTarget.COMPLETE:
            status.complete.append(step["key"])
        if target.status in BuildTarget.FAILED_STATES:
            status.failed.append(step["key"])
        elif target.status == T.WAITING:
            status.waiting.append(step["key"])
        elif target.status in BuildTarget.UNDERWAY:
            status.underway.append(step["key"])
    done = set(status.complete)
    status.runnable = [
        step
        for step in steps
        if step["key"] not in targets and all(dep in done for dep in step["depends_on"])
    ]
    return status


def _create_targets(
    build: Build, steps: list[dict], earlier: dict[str, BuildTarget]
) -> list[BuildTarget]:
    """Create a pending target for each of ``steps``: its first attempt, or the one after
    its last superseded attempt in ``earlier`` (by step key)."""
    if not steps:
        return []
    now = timezone.now()
    # Read only when the plan has an approval: most have none, and a pass stays cheap.
    has_approvals = any(step["type"] == APPROVAL for step in build.plan_snapshot)
    approvals = approval_variables(build) if has_approvals else {}
    variables = [snapshot_variables(build, step, now, approvals) for step in steps]
    targets = BuildTarget.objects.bulk_create(
        BuildTarget(
            **retries.next_attempt(earlier.get(step["key"])),
            build=build,
            step_key=step["key"],
            generation=build.generation,
            name=step["name"],
            step_type=step["type"],
            config=step["config"],
            wait_for_message=step["wait_for_message"],
            variables=step_variables,
            concurrency_group=concurrency.group_name(step, step_variables),
            status=T.PENDING,
        )
        for step, step_variables in zip(steps, variables, strict=True)
    )
    for target in targets:
        detail = retries.attempt_detail(target, earlier.get(target.step_key))
        record_event(
            build_id=build.pk,
            target=target,
            from_status="",
            to=T.PENDING,
            cause=ENGINE,
            detail=detail,
        )
    return targets
