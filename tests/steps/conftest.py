"""Running one step in-process on a target made for the test, and real git repositories."""

import subprocess
from itertools import count
from pathlib import Path

import pytest
from django.utils import timezone

from builds.models import Build, Buildable, BuildTarget
from builds.variables import snapshot_variables
from tests.conftest import make_plan
from workers.steps import STEP_TYPES, StepContext

_plans = count()


def make_target(
    step_type: str,
    config: dict,
    buildable: Buildable,
    plan=None,
    build_status: str = Build.Status.BUILDING,
    parameters: dict | None = None,
) -> BuildTarget:
    """A building target of a one-step build of ``plan`` (a new one if None) on
    ``buildable``, with its variables snapshot as the engine takes it."""
    plan = plan or make_plan(f"steps-{next(_plans)}", [{"key": "only", "step_type": step_type}])
    build = Build.objects.create(
        plan=plan,
        buildable=buildable,
        status=build_status,
        generation=1,
        parameters=parameters or {},
    )
    step = {"key": "only"}
    return BuildTarget.objects.create(
        build=build,
        step_key="only",
        generation=1,
        name="only",
        step_type=step_type,
        config=config,
        variables=snapshot_variables(build, step, timezone.now()),
        status=BuildTarget.Status.BUILDING,
        attempt=1,
    )


def run_step(target: BuildTarget, context: StepContext | None = None) -> StepContext:
    """Run the target's step in this thread; return its context. Exceptions propagate."""
    context = context or StepContext(target)
    STEP_TYPES[target.step_type]().run(context)
    return context


def log_text(target: BuildTarget, log_type: str) -> str:
    return "".join(log.text for log in target.logs.filter(log_type=log_type))


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def git_repo(tmp_path) -> Path:
    """A git repository with two commits on ``main``; the first one is tagged ``first``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "Test")
    (repo / "version.txt").write_text("one\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    git(repo, "tag", "first")
    (repo / "version.txt").write_text("two\n")
    git(repo, "commit", "-q", "-am", "second")
    return repo
