"""``manage.py build``: starts a pending build and prints its id and URL; with --wait, follows
it to the end, telling each change and why a target failed."""

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from builds import engine, progress
from builds.management.commands.build import Command
from builds.models import Build, Buildable, BuildPlan, StatusEvent
from tests.conftest import make_plan
from tests.engine.conftest import Driver, waiting_step


def run_build(*args: str) -> str:
    out = StringIO()
    call_command("build", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def plan(db) -> BuildPlan:
    return make_plan("nap", [{"key": "nap", "config": {"seconds": 0}}])


@pytest.mark.django_db
class TestStartingABuild:
    def test_it_starts_a_build_and_prints_its_id_and_url(self, plan):
        output = run_build("nap", "--repository", "https://example.com/r.git", "--commit", "c0ffee")

        build = Build.objects.get()
        assert build.status == Build.Status.BUILDING
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


def follow(build: Build, timeout: float | None = None) -> tuple[int, str]:
    """Run the command's --wait loop on an existing build; return its exit status and what
    it printed."""
    out = StringIO()
    status = Command(stdout=out).follow(build.id, timeout)
    return status, out.getvalue()


def untimed(output: str) -> list[str]:
    """The lines of ``output``, each change's time and duration cut off."""
    return [TIMED.sub("", line) for line in output.splitlines()]


TIMED = re.compile(r"^\d\d:\d\d:\d\d \+\d+:\d\d ")


def driven_build(buildable, *steps: dict) -> Driver:
    """A build of a plan of ``steps``, after its first pass, driven in this process."""
    driver = Driver(engine.start_build(make_plan("ci", list(steps)), buildable))
    driver.update()
    return driver


def units(passed: int, failed: int, skipped: int) -> list[dict]:
    results = [("pass", passed), ("fail", failed), ("skip", skipped)]
    return [
        {"name": f"test_{result}_{n}", "result": result}
        for result, count in results
        for n in range(1, count + 1)
    ]


@pytest.mark.django_db
class TestWaitingForABuild:
    """The --wait loop on builds driven through the engine in this process."""

    def test_a_passed_build_prints_each_change_with_its_time_then_a_last_line(self, buildable):
        driver = driven_build(buildable, waiting_step("ci"))
        driver.run("ci")
        driver.send("ci", "pass", unit=units(passed=3, failed=0, skipped=0))
        driver.update()
        build = driver.refresh()

        status, output = follow(build)

        assert status == 0
        assert untimed(output) == [
            "build: pending",
            "build: pending -> building",
            "target ci: pending",
            "target ci: pending -> building",
            "target ci: building -> waiting",
            "target ci: waiting -> passed",
            "build: building -> passed",
            f"build {build.id} passed",
        ]
        first = StatusEvent.objects.filter(build=build).order_by("at", "id").first()
        expected_time = first.at.astimezone().strftime("%H:%M:%S")
        assert output.startswith(f"{expected_time} +0:00 build: pending\n")

    def test_a_target_failed_by_a_message_is_told_with_the_message_and_its_tests(
        self, buildable, user
    ):
        driver = driven_build(buildable, waiting_step("tests"))
        driver.run("tests")
        receipt = driver.send("tests", "fail", author=user, unit=units(2, 6, 1))
        driver.update()
        build = driver.refresh()

        status, output = follow(build)

        assert status == 1
        assert untimed(output)[-5:] == [
            "target tests: waiting -> failed",
            f'    reason: "fail" message {receipt.message.id} from {user.username}',
            "    tests: 2 passed, 6 failed, 1 skipped; failed: "
            "test_fail_1, test_fail_2, test_fail_3, test_fail_4, test_fail_5, …",
            "build: building -> failed",
            f'build {build.id} failed: step "tests" failed (6 of 9 tests failed)',
        ]

    def test_a_step_error_is_told_by_the_last_line_of_harbors_log_and_others_aborted(
        self, buildable
    ):
        driver = driven_build(buildable, waiting_step("deploy"), waiting_step("ci"))
        driver.run("deploy", error="Traceback (most recent call last):\n  …\nOSError: disk full")
        driver.update()
        build = driver.refresh()

        status, output = follow(build)

        assert status == 1
        assert untimed(output)[-7:] == [
            "target deploy: pending -> building",
            "target deploy: building -> failed",
            "    reason: OSError: disk full",
            "build: building -> failed",
            "target ci: pending -> aborted",
            "    reason: the build failed: step deploy failed",
            f'build {build.id} failed: step "deploy" failed (OSError: disk full)',
        ]

    def test_a_build_still_running_at_the_timeout_ends_with_status_2(self, buildable):
        driver = driven_build(buildable, waiting_step("ci"))

        status, output = follow(driver.build, timeout=0.3)

        assert status == 2
        last_line = untimed(output)[-1]
        assert last_line == f"build {driver.build.id} still building after 0.3 s (--timeout)"


@pytest.mark.django_db
class TestTheCommandsOutput:
    """``manage.py build`` as a whole: exit statuses and --json. No worker runs here, so
    each build stays pending until --timeout."""

    def test_wait_exits_with_status_2_at_the_timeout_without_a_command_error(self, plan):
        out, err = StringIO(), StringIO()

        with pytest.raises(SystemExit) as exited:
            call_command("build", "nap", "--wait", "--timeout=0.2", stdout=out, stderr=err)

        assert exited.value.code == 2
        build = Build.objects.get()
        assert out.getvalue().splitlines()[-1] == (
            f"build {build.id} still building after 0.2 s (--timeout)"
        )
        assert err.getvalue() == ""

    @pytest.mark.parametrize("wait", [[], ["--wait", "--timeout=0.2"]])
    def test_json_prints_the_build_as_the_api_shows_it_alone_on_stdout(
        self, plan, client, api_token, wait
    ):
        out, err = StringIO(), StringIO()

        try:
            call_command("build", "nap", "--json", *wait, stdout=out, stderr=err)
        except SystemExit as exited:
            assert (wait, exited.code) == (["--wait", "--timeout=0.2"], 2)

        build = Build.objects.get()
        api = client.get(f"/api/v1/builds/{build.id}", HTTP_AUTHORIZATION=f"Bearer {api_token}")
        assert json.loads(out.getvalue()) == api.json()
        assert set(api.json()) >= {"id", "phid", "url", "plan", "status", "targets"}
        assert err.getvalue().startswith(f"Started build {build.id} ")


def test_durations_read_as_minutes_and_seconds_and_hours_past_an_hour():
    assert progress.duration(timedelta(seconds=65.9)) == "1:05"
    assert progress.duration(timedelta(hours=2, seconds=3)) == "2:00:03"
    assert progress.duration(timedelta(seconds=-1)) == "0:00"
