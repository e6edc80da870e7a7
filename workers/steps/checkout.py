"""Clone the buildable's repository for a ``command`` step and check out what is built.

The repository is the buildable's ``repository.uri``; the commit ``buildable.commit`` is
checked out (detached), else the ref ``buildable.ref``, else the default branch. Only the
transports in ``GIT_ALLOW_PROTOCOL`` may be used (never ``ext::``, which runs commands),
and neither the URI nor the commit nor the ref may look like an option.
"""

from collections.abc import Callable
from pathlib import Path

from workers.steps.base import StepAborted, StepContext, StepFailed
from workers.steps.process import run_streaming

ALLOWED_PROTOCOLS = "file:git:http:https:ssh"
CLONE_TIMEOUT = 600


def clone_repository(
    context: StepContext, into: Path, env: dict[str, str], on_output: Callable[[str], None]
) -> None:
    """Clone the buildable's repository into ``into`` (an existing, empty directory) and
    check out its commit or ref. Raises StepFailed if there is no repository or git fails,
    StepAborted if the step is told to stop meanwhile."""
    uri = context.variables.get("repository.uri") or ""
    commit = context.variables.get("buildable.commit") or ""
    ref = context.variables.get("buildable.ref") or ""
    if not uri:
        raise StepFailed("clone: the buildable has no repository to clone.")
    for label, value in (("repository", uri), ("commit", commit), ("ref", ref)):
        if value.startswith("-"):
            raise StepFailed(f"clone: refusing the {label} {value!r}, which looks like an option.")
    git_env = {**env, "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS, "GIT_TERMINAL_PROMPT": "0"}
    _git(context, ["clone", "--no-checkout", "--", uri, "."], into, git_env, on_output)
    if commit:
        _git(context, ["checkout", "--detach", commit], into, git_env, on_output)
    elif ref:  # a branch, a tag or a full ref name: fetching it names it FETCH_HEAD
        _git(context, ["fetch", "--quiet", "origin", ref], into, git_env, on_output)
        _git(context, ["checkout", "--detach", "FETCH_HEAD"], into, git_env, on_output)
    else:
        _git(context, ["checkout"], into, git_env, on_output)


def _git(context, args: list[str], cwd: Path, env: dict, on_output) -> None:
    on_output("$ git " + " ".join(args) + "\n")
    result = run_streaming(
        ["git", *args],
        cwd=str(cwd),
        env=env,
        timeout=CLONE_TIMEOUT,
        should_stop=context.should_stop,
        on_output=on_output,
    )
    if result.stopped_because == "stopped":
        raise StepAborted("the build target was aborted or claimed by another worker")
    if result.exit_code != 0:
        what = "timed out" if result.stopped_because == "timeout" else f"exited {result.exit_code}"
        raise StepFailed(f"clone: git {args[0]} {what}.")
