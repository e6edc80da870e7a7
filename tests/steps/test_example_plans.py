"""The example plans in examples/plans/, imported and built to the end on real workers."""

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from builds import engine
from builds.models import Artifact, Build, BuildPlan, BuildTarget, UnitResult
from tests.steps.conftest import git, log_text
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def build_and_wait(*args: str) -> tuple[Build, str, int]:
    """``manage.py build ... --wait``; the build, what the command printed and its exit
    status."""
    out = StringIO()
    status = 0
    try:
        call_command("build", *args, "--wait", "--timeout", "120", stdout=out)
    except SystemExit as exited:
        status = exited.code
    finally:
        print(out.getvalue())  # shown by pytest when a test fails
    return Build.objects.latest("id"), out.getvalue(), status


@pytest.fixture
def sample_repository(tmp_path) -> tuple[Path, str]:
    """A git repository holding examples/junit_project at its usual path; its commit."""
    repo = tmp_path / "repo"
    shutil.copytree(
        EXAMPLES / "junit_project",
        repo / "examples" / "junit_project",
        ignore=shutil.ignore_patterns("__pycache__", "reports"),
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "x")
    return repo, git(repo, "rev-parse", "HEAD")


def test_the_command_junit_plan_passes_and_reports_its_unit_results(
    celery_workers, sample_repository
):
    repo, commit = sample_repository
    call_command("importplan", str(EXAMPLES / "plans" / "command-junit.yaml"), stdout=StringIO())
    build, output, status = build_and_wait(
        "command-junit", "--repository", f"file://{repo}", "--commit", commit
    )
    assert (build.status, status) == (Build.Status.PASSED, 0)
    assert output.rstrip().endswith(f"build {build.pk} passed")
    results = dict(UnitResult.objects.filter(target__build=build).values_list("name", "result"))
    assert len(results) == 5
    assert results["test_adds_the_prices"] == "pass"
    assert results["test_many_prices_add_up"] == "skip"


def test_the_command_junit_plan_fails_with_the_failing_test_reported(
    celery_workers, sample_repository
):
    repo, commit = sample_repository
    call_command("importplan", str(EXAMPLES / "plans" / "command-junit.yaml"), stdout=StringIO())
    build, output, status = build_and_wait(
        "command-junit", "--repository", str(repo), "--commit", commit, "--param", "fail=yes"
    )
    assert (build.status, status) == (Build.Status.FAILED, 1)
    assert "test_the_build_is_not_asked_to_fail" in output
    assert output.rstrip().splitlines()[-1].startswith(f"build {build.pk} failed: step ")
    failed = UnitResult.objects.get(target__build=build, result="fail")
    assert failed.name == "test_the_build_is_not_asked_to_fail"


def test_the_fan_out_plan_runs_three_steps_in_parallel_then_joins_them(celery_workers):
    call_command("importplan", str(EXAMPLES / "plans" / "fan-out.yaml"), stdout=StringIO())
    build, _, _ = build_and_wait("fan-out")
    assert build.status == Build.Status.PASSED
    targets = {t.step_key: t for t in BuildTarget.objects.filter(build=build)}
    branches = [targets[key] for key in ("lint", "unit", "docs")]
    # Each branch sleeps 2 s: they overlapped if the last one started before the first ended.
    assert max(t.date_started for t in branches) < min(t.date_completed for t in branches)
    assert targets["join"].date_started >= max(t.date_completed for t in branches)
    keys = set(Artifact.objects.filter(build=build).values_list("key", flat=True))
    assert keys == {"lint-report", "unit-report", "docs-site"}
    joined = log_text(targets["join"], "output")
    assert f"https://ci.example.com/builds/{build.pk}/unit" in joined


def test_the_deploy_plan_runs_one_deploy_of_a_branch_at_a_time(celery_workers):
    call_command("importplan", str(EXAMPLES / "plans" / "deploy.yaml"), stdout=StringIO())
    plan = BuildPlan.objects.get(name="deploy")
    buildables = [engine.find_or_create_buildable("repo", "main", c * 40) for c in "ab"]
    first, second = (engine.start_build(plan, b) for b in buildables)

    def deploy_of(build: Build, status: str) -> BuildTarget | None:
        return BuildTarget.objects.filter(build=build, step_key="deploy", status=status).first()

    waiting = wait_for(lambda: deploy_of(first, "waiting") or deploy_of(second, "waiting"))
    other = second if waiting.build_id == first.pk else first
    queued = wait_for(lambda: deploy_of(other, "pending"))
    assert queued.concurrency_group == "deploy-main" and queued.date_admitted is None
    engine.receive_message(waiting.phid, "pass")
    later = wait_for(lambda: deploy_of(other, "waiting"), timeout=60)
    engine.receive_message(later.phid, "pass")
    wait_for(lambda: Build.objects.get(pk=other.pk).status == "passed", timeout=60)
    waiting.refresh_from_db()
    assert later.date_started >= waiting.date_completed
