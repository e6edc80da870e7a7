"""Run Command: run a shell command on the worker host, in a fresh working directory.

Not in Harbormaster itself (its Drydock "Run Command" needs leased hosts, docs/harbormaster.md §4);
Harbor runs the command on the worker that runs the target. **This runs code from plan files and
repositories on worker hosts**: operators who do not want that set
``HARBOR_ALLOW_COMMAND_STEPS`` to false, which refuses such steps at plan import and at run
time (README "Command steps").

Config:
  ``command``    required; the text ``/bin/sh -c`` runs. Variables are never spliced into
                 it: each is an environment variable, ``${build.id}`` as ``$HARBOR_BUILD_ID``
                 (``HARBOR_`` + the name upper-cased, ``.``, ``/`` and ``-`` as ``_``); a
                 ``${name}`` in the text is refused so nobody mistakes it for substitution.
  ``clone``      true to ``git clone`` the buildable's repository first and check out its
                 commit (else its ref); the command runs in the clone.
  ``directory``  a directory under the working directory (or clone) to run in.
  ``env``        extra environment variables; values take ``${variables}`` (as plain text:
                 an environment value is never parsed by the shell).
  ``timeout``    seconds before the command's process group is stopped (default
                 ``HARBOR_COMMAND_TIMEOUT``, 3600); the target then fails.
  ``junit``      glob(s) relative to the run directory; each JUnit XML file found afterwards
                 becomes unit results of the target.
  ``artifacts``  ``{produces: [keys], consumes: [keys]}``: see ``workers/steps/artifacts.py``
                 (``$HARBOR_ARTIFACTS/<key>.json`` out, ``$HARBOR_ARTIFACT_<KEY>`` in).

The command sees only ``PATH``, ``LANG``/``LC_*``, ``TZ``, ``HOME`` (a fresh directory) and
``TMPDIR`` of the worker's environment, never its secrets (database URL, credentials).
Output (stdout and stderr together, in order) streams into the live log ``command``/
``output``. Exit status 0 passes; anything else, a time-out or a missing JUnit report fails.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

from django.conf import settings

from builds import step_options
from builds.variables import substitute
from workers.steps import artifacts, junit
from workers.steps.base import (
    BuildStepImplementation,
    StepAborted,
    StepContext,
    StepFailed,
    StepTimedOut,
)
from workers.steps.checkout import clone_repository
from workers.steps.process import run_streaming

PASSED_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")


def environment_name(variable: str) -> str:
    """The environment variable carrying ``variable``: ``build.id`` → ``HARBOR_BUILD_ID``."""
    return "HARBOR_" + re.sub(r"[^A-Z0-9]", "_", variable.upper())


class CommandStep(BuildStepImplementation):
    """Run a shell command in a fresh working directory, optionally in a clone."""

    declaration = step_options.COMMAND
    description = "Run a shell command on the worker (optionally in a clone of the repository)."

    def run(self, context: StepContext) -> None:
        if self.declaration.refusal():
            raise StepFailed("Command steps are switched off on this worker.")
        # Checked again here: this runs code, so a config that bypassed plan import (or
        # was imported before a rule existed) must not reach the shell.
        problems = step_options.option_problems(self.declaration, context.config)
        if problems:
            raise StepFailed(f"Invalid command step: {'; '.join(problems)}.")
        workspace = Path(tempfile.mkdtemp(prefix="harbor-target-"))
        try:
            self._run_in(workspace, context)
        finally:
            shutil.rmtree(workspace, ignore_errors=True)

    def _run_in(self, workspace: Path, context: StepContext) -> None:
        config = context.config
        env = command_environment(workspace, context)
        output = context.open_live_log("command", "output")
        try:
            root = workspace / "work"
            root.mkdir()
            if context.option("clone"):
                clone_repository(context, root, env, output.append)
            run_dir = (root / context.option("directory")).resolve()
            if not run_dir.is_relative_to(root.resolve()) or not run_dir.is_dir():
                raise StepFailed(f"The directory {config.get('directory')!r} does not exist.")
            output.append(f"$ {config['command']}\n")
            result = run_streaming(
                ["/bin/sh", "-c", config["command"]],
                cwd=str(run_dir),
                env=env,
                timeout=_timeout(context),
                should_stop=context.should_stop,
                on_output=output.append,
            )
            verdict = _verdict(result, _timeout(context))
            output.append(f"\n[harbor] {verdict}\n")
            _report_junit(context, run_dir, _junit_patterns(context), output, result.exit_code)
            if result.stopped_because == "stopped":
                raise StepAborted("the build target was aborted or claimed by another worker")
            if result.stopped_because == "timeout":
                raise StepTimedOut(verdict)
            if result.exit_code != 0:
                raise StepFailed(verdict)
            for line in artifacts.create_produced(context.target, config, workspace / "artifacts"):
                output.append(f"[harbor] {line}\n")
        finally:
            output.close()


def command_environment(workspace: Path, context: StepContext) -> dict[str, str]:
    """The command's whole environment: a few of the worker's own variables, a fresh
    ``HOME`` and ``TMPDIR``, ``HARBOR_ARTIFACTS`` (where produced artifacts go), consumed
    artifacts as ``HARBOR_ARTIFACT_*``, the target's variables as ``HARBOR_*``, then ``env``.
    Raises StepFailed if a consumed artifact does not exist."""
    home, tmp, produced = workspace / "home", workspace / "tmp", workspace / "artifacts"
    for directory in (home, tmp, produced):
        directory.mkdir()
    env = {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(HOME=str(home), TMPDIR=str(tmp), HARBOR_ARTIFACTS=str(produced))
    env.update(artifacts.consumed_environment(context.target, context.config))
    for name, value in context.variables.items():
        env[environment_name(name)] = value if value is not None else ""
    for name, value in context.option("env").items():
        env[str(name)] = substitute(str(value), context.variables)
    return env


def _verdict(result, timeout: float) -> str:
    if result.stopped_because == "timeout":
        return f"The command ran longer than its time limit of {timeout:g} s and was stopped."
    if result.stopped_because == "stopped":
        return "The command was stopped: the build target was aborted or claimed again."
    if result.exit_code < 0:
        return f"The command was killed by signal {-result.exit_code}."
    return f"The command exited with status {result.exit_code}."


def _report_junit(context, run_dir, patterns, output, exit_code) -> None:
    """Turn the JUnit reports into unit results; fail if none is found for a command that
    passed (a report that never appeared means the tests did not run)."""
    if not patterns or context.should_stop():
        return
    reports = junit.find_reports(run_dir, patterns)
    units = []
    for path in reports:
        try:
            units += junit.parse_report(path)
        except junit.JUnitError as exc:
            output.append(f"[harbor] {exc}\n")
    count = junit.store_results(context.target, units)
    output.append(f"[harbor] {count} unit result(s) from {len(reports)} JUnit file(s).\n")
    if not reports and exit_code == 0:
        raise StepFailed(f"No JUnit report matched {', '.join(patterns)}.")


def _junit_patterns(context: StepContext) -> list[str]:
    """The ``junit`` globs as a list (checked in ``run``: relative, inside)."""
    patterns = context.option("junit")
    return [patterns] if isinstance(patterns, str) else patterns


def _timeout(context: StepContext) -> float:
    """``timeout`` in seconds, else ``HARBOR_COMMAND_TIMEOUT``."""
    return float(context.option("timeout") or settings.HARBOR_COMMAND_TIMEOUT)
