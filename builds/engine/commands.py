"""Build commands (restart, pause, resume, abort): Harbormaster's can-apply rules and effects.

Rules follow ``HarbormasterBuildMessage*Transaction`` (docs/harbormaster.md §3). Unlike
Harbormaster, which applies only the latest unconsumed command and drops the rest, Harbor applies
every command in the order received, each checked at that moment (docs/design.md §3.4), so an abort
cannot vanish behind a later pause. Beyond Harbormaster, abort and restart move the affected
generation's unfinished targets to ``aborted`` so nothing is left waiting for ever
(docs/design.md §3.4).
"""

from functools import partial

from django.db import transaction
from django.utils import timezone

from builds.engine import dispatch
from builds.engine.reruns import apply_rerun, weigh_rerun
from builds.engine.transitions import RESTARTABLE_FROM, move_build, move_target
from builds.models import Build, BuildMessage, BuildTarget, StatusEvent

B = Build.Status
COMMAND = StatusEvent.Cause.COMMAND
UNFINISHED = (BuildTarget.Status.PENDING, BuildTarget.Status.BUILDING, BuildTarget.Status.WAITING)


def command_refusal(build: Build, command: str, step_key: str = "") -> str | None:
    """Return why ``command`` cannot apply to ``build`` now (Harbormaster's can-apply
    assertion text), or None if it can; ``step_key`` is the step a ``rerun`` names (a step
    of the build's plan, ``reruns.check_step``). Raises KeyError for an unknown command."""
    return _weigh(build, command, step_key)[0]


def _weigh(build: Build, command: str, step_key: str) -> tuple[str | None, dict[str, BuildTarget]]:
    """``command_refusal``'s answer, and for a rerun the build's current attempts it read
    (``reruns.weigh_rerun``; else empty)."""
    if build.plan.auto_key:
        return "You can not issue commands to an autobuild.", {}
    if command == BuildMessage.Type.RERUN:
        return weigh_rerun(build, step_key)
    return REFUSALS[command](build), {}


def _restart_refusal(build: Build) -> str | None:
    restartable = build.plan.behavior("restartable")
    if restartable == "never":
        return "This build can not be restarted: its plan is not restartable."
    if restartable == "failed" and build.status != B.FAILED:
        return "This build can not be restarted: its plan only restarts failed builds."
    return None


def _pause_refusal(build: Build) -> str | None:
    if build.status == B.PAUSED:
        return "You can not pause this build because it is already paused."
    if build.is_complete:
        return "You can not pause this build because it is already complete."
    return None


def _resume_refusal(build: Build) -> str | None:
    if build.status != B.PAUSED:
        return "You can not resume this build because it is not paused."
    return None


def _abort_refusal(build: Build) -> str | None:
    if build.is_complete:
        return "You can not abort this build because it is already complete."
    return None


REFUSALS = {
    "restart": _restart_refusal,
    "pause": _pause_refusal,
    "resume": _resume_refusal,
    "abort": _abort_refusal,
}


def apply_commands(build: Build, messages: list[BuildMessage]) -> None:
    """Apply each unconsumed command message of ``build`` in id order, under its row lock.

    Each message is consumed conditionally first; only a message this pass consumed takes
    effect, so a replayed pass cannot apply a command twice.
    """
    for message in messages:
        # A rerun applies to the attempts its refusal was decided on, read once per message
        # (an earlier command of this pass may have changed them). Nothing it acts on can
        # change in between: only a pass creates or supersedes targets, and this one holds
        # the build's row lock; what it supersedes (the step and its dependents, found
        # complete, and aborted targets) is complete, and complete is final. A worker
        # aborts no current target of a building build, and a complete one has no
        # unfinished target left (targets._abandoned_reason, passes.run_pass).
        refusal, attempts = _weigh(build, message.type, message.step_key)
        outcome = f"no effect: {refusal}" if refusal else f"build {message.type} applied"
        if message.step_key and not refusal:
            outcome = f"rerun of step {message.step_key} applied"
        if not _consume(message, outcome) or refusal:
            continue
        if message.type == BuildMessage.Type.RERUN:
            apply_rerun(build, message, attempts)
        else:
            APPLY[message.type](build, message)


def _consume(message: BuildMessage, outcome: str) -> bool:
    return bool(
        BuildMessage.objects.filter(pk=message.pk, is_consumed=False).update(
            is_consumed=True, date_consumed=timezone.now(), outcome=outcome
        )
    )


def _abort_unfinished_targets(build: Build, message: BuildMessage) -> None:
    targets = build.targets.filter(generation=build.generation, status__in=UNFINISHED)
    abort_targets(targets, COMMAND, f"build {message.type}ed", message=message)


def abort_targets(targets, cause: str, detail: str, message: BuildMessage | None = None) -> None:
    """Move each of ``targets`` to ``aborted``; a target that had started (building or
    waiting) and has a cancel hook (``on_abort``) gets it called after commit."""
    for target in targets:
        was_started = target.status != BuildTarget.Status.PENDING
        moved = move_target(
            target, BuildTarget.Status.ABORTED, cause, message=message, detail=detail
        )
        if moved and was_started and target.config.get("on_abort"):
            # The outside system may be running or waiting on our behalf: tell it.
            transaction.on_commit(partial(dispatch.call_cancel_hook, target.pk))


def _restart(build: Build, message: BuildMessage) -> None:
    _abort_unfinished_targets(build, message)
    move_build(
        build,
        B.BUILDING,
        COMMAND,
        allowed_from=RESTARTABLE_FROM,
        message=message,
        detail=f"restarted as run {build.generation + 1}",
        generation=build.generation + 1,
    )


def _abort(build: Build, message: BuildMessage) -> None:
    _abort_unfinished_targets(build, message)
    move_build(build, B.ABORTED, COMMAND, message=message)


def _pause(build: Build, message: BuildMessage) -> None:
    move_build(build, B.PAUSED, COMMAND, message=message)


def _resume(build: Build, message: BuildMessage) -> None:
    # A build paused before its first pass resumes as run 1, not run 0 (Harbormaster's
    # quirk, docs/harbormaster.md §1.13, would run it as generation 0).
    move_build(build, B.BUILDING, COMMAND, message=message, generation=build.generation or 1)


APPLY = {
    "restart": _restart,
    "abort": _abort,
    "pause": _pause,
    "resume": _resume,
}


def derived_status(build: Build, unconsumed_commands: list[str] | None = None) -> str:
    """The status to show: ``restarting``/``aborting``/``pausing``/``resuming`` while such a
    command is unconsumed, else the stored status (``HarbormasterBuild::
    getUnprocessedMessageState``; precedence restarting > aborting > pausing > resuming).

    ``unconsumed_commands`` are the types of the build's unconsumed command messages in id
    order; when None they are queried (one query).
    """
    if unconsumed_commands is None:
        unconsumed_commands = list(
            build.messages.filter(is_consumed=False, type__in=BuildMessage.COMMANDS)
            .order_by("id")
            .values_list("type", flat=True)
        )
    pending = set()
    opposite = {"restart": "abort", "abort": "restart", "pause": "resume", "resume": "pause"}
    for command in unconsumed_commands:
        if command not in opposite:
            continue  # a rerun shows as the status it changes, once applied
        pending.discard(opposite[command])
        pending.add(command)
    for command, shown in (
        ("restart", "restarting"),
        ("abort", "aborting"),
        ("pause", "pausing"),
        ("resume", "resuming"),
    ):
        if command in pending:
            return shown
    return build.status
