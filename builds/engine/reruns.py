"""Re-running one step of a build's current run, with every step that depends on it
(docs/design.md §6.8; Harbormaster can only restart a whole build).

A ``rerun`` is a command message naming a step (``BuildMessage.step_key``), applied by the
pass in order with the other commands. Applying it supersedes the current attempts of the
step and of its transitive dependents (``transitions.supersede_target``), and the targets
the run aborted without a result; the same pass then creates the step's next attempt like
any runnable step's, and its dependents follow as it completes. The rest keep their
results. A complete build becomes ``building`` again.
"""

from builds.engine.transitions import move_build, supersede_target
from builds.models import Build, BuildMessage, BuildTarget, StatusEvent

B = Build.Status
T = BuildTarget.Status
RERUN = BuildTarget.Supersession.RERUN
# A rerun reopens a build that ended on its steps' results; an aborted build was stopped
# by a user (restart it), and an error or deadlock is not a step's to fix.
RERUNNABLE_FROM = frozenset({B.BUILDING, B.PASSED, B.FAILED})


class UnknownStep(ValueError):
    """The rerun names no step of the build's plan snapshot."""


def check_step(build: Build, step_key: str | None) -> None:
    """Raise UnknownStep unless ``step_key`` names a step of ``build``'s plan snapshot."""
    keys = [step["key"] for step in build.plan_snapshot]
    if step_key not in keys:
        raise UnknownStep(
            f"The build has no step {step_key!r}; its steps are: {', '.join(keys) or 'none'}."
        )


def dependents(steps: list[dict], step_key: str) -> list[str]:
    """``step_key`` and the keys of every step that depends on it, directly or not, in
    plan order."""
    chosen = {step_key}
    changed = True
    while changed:  # plans are small and acyclic: a few sweeps settle it
        changed = False
        for step in steps:
            if step["key"] not in chosen and chosen & set(step["depends_on"]):
                chosen.add(step["key"])
                changed = True
    return [step["key"] for step in steps if step["key"] in chosen]


def weigh_rerun(build: Build, step_key: str) -> tuple[str | None, dict[str, BuildTarget]]:
    """Why step ``step_key`` of ``build`` cannot run again now (None if it can: the build is
    paused or not building/passed/failed, the step has not completed in this run, or it or
    a step depending on it is still running), and the build's current attempts read to
    decide (step key → target; empty when the build's status refused it before reading
    them), which ``apply_rerun`` takes. ``step_key`` must be a known step
    (``check_step``)."""
    if build.status == B.PAUSED:
        return "You can not rerun a step while the build is paused; resume it first.", {}
    if build.status not in RERUNNABLE_FROM:
        return f"You can not rerun a step of a build that is {build.status}.", {}
    current = current_attempts(build)
    return _attempts_refusal(build, step_key, current), current


def _attempts_refusal(build: Build, step_key: str, current: dict[str, BuildTarget]) -> str | None:
    target = current.get(step_key)
    if target is None:
        return f'Step "{step_key}" has not run in this run yet.'
    for key in dependents(build.plan_snapshot, step_key):
        if key in current and not current[key].is_complete:
            which = "it" if key == step_key else f'step "{key}", which depends on it,'
            return f'You can not rerun step "{step_key}": {which} is still running.'
    return None


def apply_rerun(build: Build, message: BuildMessage, current: dict[str, BuildTarget]) -> None:
    """Supersede the step's and its dependents' attempts among ``current`` (the build's
    current attempts, step key → target, as ``weigh_rerun`` read them) and the run's
    aborted targets, then move a complete build back to ``building``. Runs under the
    build's row lock, after ``weigh_rerun`` found nothing against it."""
    rerun = set(dependents(build.plan_snapshot, message.step_key))
    for key, target in current.items():
        if key in rerun or target.status == T.ABORTED:
            supersede_target(target, RERUN)
    if build.status != B.BUILDING:
        move_build(
            build,
            B.BUILDING,
            StatusEvent.Cause.COMMAND,
            allowed_from=RERUNNABLE_FROM,
            message=message,
            detail=f"rerun of step {message.step_key}",
        )


def current_attempts(build: Build) -> dict[str, BuildTarget]:
    """Step key → the current attempt of each step of ``build``'s current run that has one
    (one query)."""
    targets = build.targets.filter(generation=build.generation, superseded_by="")
    return {target.step_key: target for target in targets}
