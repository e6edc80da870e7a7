"""Running a step again in the same run: automatic retries, and the attempt numbers of
both retries and reruns (docs/design.md, "Attempts").

A step that runs again gets a new build target, its next ``step_attempt``, so each attempt
keeps its own logs, messages, unit results and artifacts; the attempt it replaces is
marked superseded (``transitions.supersede_target``) and the engine reads it no more. The
pass that supersedes it sees the step without a current target, and creates the new one
like any runnable step's (``passes._create_targets``), all under the build's row lock.
"""

from builds.engine.transitions import supersede_target
from builds.models import BuildTarget

T = BuildTarget.Status
RETRY = BuildTarget.Supersession.RETRY


def retry_due(target: BuildTarget) -> bool:
    """Whether the current attempt ``target`` failed in a way its step's ``retry.on``
    names, with retries left under ``retry.limit``."""
    retry = target.config.get("retry")
    return bool(
        retry
        and target.status == T.FAILED
        and target.failure in retry["on"]
        and target.retries < retry["limit"]
    )


def retries_when_lost(target: BuildTarget) -> bool:
    """Whether a lapsed claim of ``target`` should end the attempt (as ``lost``, to be
    retried as a new attempt) rather than be claimed again in place."""
    retry = target.config.get("retry")
    return bool(
        retry and BuildTarget.Failure.LOST in retry["on"] and target.retries < retry["limit"]
    )


def retry_failed_targets(targets: dict[str, BuildTarget]) -> None:
    """Supersede each target of ``targets`` (the current attempts, by step key) whose retry
    is due, and drop it from ``targets``, so the pass classifies its step as not yet run and
    creates its next attempt. Nothing is retried when another step has failed for good: the
    build fails in this pass, and an attempt superseded then would have no successor.
    Conditional: an attempt already superseded (a replayed pass) is left as it is."""
    due = {key for key, target in targets.items() if retry_due(target)}
    if any(t.status in BuildTarget.FAILED_STATES for k, t in targets.items() if k not in due):
        return
    for key in due:
        if supersede_target(targets[key], RETRY):
            del targets[key]


def latest_superseded(attempts: list[BuildTarget]) -> dict[str, BuildTarget]:
    """The last superseded attempt of each step among ``attempts`` (one run's targets)."""
    latest: dict[str, BuildTarget] = {}
    for target in attempts:
        if target.superseded_by and (
            target.step_key not in latest
            or target.step_attempt > latest[target.step_key].step_attempt
        ):
            latest[target.step_key] = target
    return latest


def next_attempt(previous: BuildTarget | None) -> dict:
    """The fields of the target that follows ``previous`` (the step's last superseded
    attempt in this run, or None for its first): ``step_attempt``, ``retries``."""
    if previous is None:
        return {"step_attempt": 1, "retries": 0}
    retried = previous.superseded_by == RETRY
    return {
        "step_attempt": previous.step_attempt + 1,
        "retries": previous.retries + 1 if retried else 0,
    }


def attempt_detail(target: BuildTarget, previous: BuildTarget | None) -> str:
    """The timeline's words for a new attempt: "attempt 2 of 3: attempt 1 failed (timeout)",
    or "" for a first attempt."""
    if previous is None:
        return ""
    allowed = target.attempts_allowed
    of = f" of {allowed}" if allowed and previous.superseded_by == RETRY else ""
    if previous.superseded_by == RETRY:
        why = f"attempt {previous.step_attempt} {previous.status} ({previous.failure})"
    else:
        why = "rerun requested"
    return f"attempt {target.step_attempt}{of}: {why}"
