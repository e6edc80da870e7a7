"""``manage.py build --wait`` run as a person runs it, in a process of its own, while real
workers run the build: it tells the failure with its reason and tests, ends with one clear
line and exit status 1, and prints no traceback or ``CommandError``."""

import subprocess
import sys

import pytest

from builds import engine
from builds.models import Build, BuildTarget
from tests.conftest import make_plan
from tests.engine.conftest import waiting_step
from tests.workers import ROOT, wait_for, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]


def test_a_build_failed_by_its_ci_ends_with_the_reason_and_exit_status_1(celery_workers):
    make_plan("ci", [waiting_step("tests")])
    command = [sys.executable, "manage.py", "build", "ci", "--commit", "bad0001"]
    waiting = subprocess.Popen(
        [*command, "--wait", "--timeout", "120"],
        cwd=ROOT,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        target = wait_for(lambda: BuildTarget.objects.filter(status="waiting").first(), 60)
        unit = [
            {"name": "test_adds", "result": "pass"},
            {"name": "test_rounds", "result": "fail"},
            {"name": "test_parses", "result": "broken"},
        ]
        engine.receive_message(target.phid, "fail", unit=unit)
        out, err = waiting.communicate(timeout=120)
    finally:
        waiting.kill()

    build = Build.objects.get()
    lines = out.splitlines()
    assert waiting.returncode == 1, (out, err)
    assert lines[-1] == f'build {build.id} failed: step "tests" failed (2 of 3 tests failed)'
    assert any(line.endswith("target tests: waiting -> failed") for line in lines), out
    assert "    tests: 1 passed, 2 failed, 0 skipped; failed: test_rounds, test_parses" in lines
    assert any(line.startswith('    reason: "fail" message ') for line in lines), out
    assert err == ""
    assert "Traceback" not in out and "CommandError" not in out
