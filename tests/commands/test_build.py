"""``manage.py build``: starts a pending build and prints its id and URL."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from builds.models import Build, Buildable, BuildPlan
from tests.conftest import make_plan


def run_build(*args: str) -> str:
    out = StringIO()
    call_command("build", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def plan(db) -> BuildPlan:
    return make_plan("nap", [{"key": "nap", "config": {"seconds": 0}}])


@pytest.mark.django_db
class TestStartingABuild:
    def test_it_creates_a_pending_build_and_prints_its_id_and_url(self, plan):
        output = run_build("nap", "--repository", "https://example.com/r.git", "--commit", "c0ffee")

        build = Build.objects.get()
        assert build.status == Build.Status.PENDING
        assert build.plan == plan
        lines = output.splitlines()
        assert lines[0] == f"Started build {build.id} ({build.phid}) of plan nap"
        assert lines[1] == build.absolute_url()
        assert lines[1].endswith(f"/builds/{build.id}/")

    def test_it_builds_the_buildable_given_with_its_parameters(self, plan):
        run_build(
            "nap",
            "--repository=https://example.com/r.git",
            "--ref=main",
            "--commit=c0ffee",
            "--param=suite=smoke",
            "--param=dry-run=",
        )

        build = Build.objects.select_related("buildable").get()
        assert (build.buildable.repository, build.buildable.ref, build.buildable.commit) == (
            "https://example.com/r.git",
            "main",
            "c0ffee",
        )
        assert build.parameters == {"suite": "smoke", "dry-run": ""}

    def test_a_plan_can_be_named_by_its_phid(self, plan):
        run_build(plan.phid)

        assert Build.objects.get().plan == plan


@pytest.mark.django_db
class TestRefusingABuild:
    def test_an_unknown_plan_is_a_command_error(self, plan):
        with pytest.raises(CommandError, match="No build plan 'nope'"):
            run_build("nope")
        assert not Build.objects.exists()

    def test_a_disabled_plan_is_a_command_error(self, plan):
        BuildPlan.objects.filter(pk=plan.pk).update(status=BuildPlan.Status.DISABLED)

        with pytest.raises(CommandError, match="disabled"):
            run_build("nap")
        assert not Build.objects.exists()

    @pytest.mark.parametrize("param", ["novalue", "Upper=1", "=empty-name"])
    def test_a_malformed_param_is_a_command_error_and_starts_nothing(self, plan, param):
        with pytest.raises(CommandError, match="--param"):
            run_build("nap", "--param", param)
        assert not Build.objects.exists()
        assert not Buildable.objects.exists()


def follow(build: Build, timeout: float | None = None) -> str:
    """Run the command's --wait loop on an existing build; return what it printed."""
    from builds.management.commands.build import Command

    out = StringIO()
    Command(stdout=out).follow(build.id, timeout)
    return out.getvalue()


@pytest.mark.django_db
class TestWaitingForABuild:
    """The --wait loop on builds put in a state directly (no workers run here)."""

    def test_a_passed_build_prints_its_targets_and_returns_normally(self, plan, buildable):
        build = Build.objects.create(plan=plan, buildable=buildable, status="passed")
        build.targets.create(step_key="nap", generation=1, name="nap", status="passed")

        output = follow(build)

        assert output.splitlines() == [
            "target nap: passed",
            "build: passed",
            f"Build {build.id} passed",
        ]

    def test_a_failed_build_exits_with_status_1(self, plan, buildable):
        build = Build.objects.create(plan=plan, buildable=buildable, status="failed")

        with pytest.raises(CommandError, match="ended failed") as ended:
            follow(build)
        assert ended.value.returncode == 1

    def test_a_build_still_running_at_the_timeout_exits_with_status_2(self, plan, buildable):
        build = Build.objects.create(plan=plan, buildable=buildable, status="building")

        with pytest.raises(CommandError, match="still building after 0.3 s") as timed_out:
            follow(build, timeout=0.3)
        assert timed_out.value.returncode == 2
