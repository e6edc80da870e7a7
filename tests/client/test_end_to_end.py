"""``harbor-report``, installed in a virtual environment of its own and run as a CI job runs
it, against a running Harbor with real workers: a verdict accepted and applied, the re-run
of the job answered duplicate, a verdict that can no longer count refused, the reports of
pytest, Surefire and go-junit-report with lint in both formats stored whole, a 503 retried
and accepted exactly once, and an unreachable Harbor tried again, then given up on."""

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
import requests
from werkzeug import Response

from builds import engine
from builds.models import Build, BuildMessage, BuildTarget, LintMessage, UnitResult
from builds.secrets import target_secret
from tests.client.test_lint_and_keys import CHECKSTYLE
from tests.conftest import make_plan
from tests.junit.conftest import SAMPLES, run_pytest_on_sample_project
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]
GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "8812345", "GITHUB_JOB": "test"}


def run(command: Path, *args: str, **environ: str) -> subprocess.CompletedProcess:
    """The client in a clean environment holding only ``environ`` (and a PATH)."""
    return subprocess.run(
        [str(command), *args],
        env={"PATH": os.environ["PATH"], **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def waiting_target(buildable) -> BuildTarget:
    plan = make_plan("ci", [{"key": "ci", "step_type": "sleep", "wait_for_message": True}])
    build = engine.start_build(plan, buildable)
    return wait_for(lambda: BuildTarget.objects.filter(build=build, status="waiting").first())


@pytest.mark.workers
def test_a_ci_job_reports_its_verdict_its_rerun_is_a_duplicate_and_a_late_one_refused(
    harbor_report_command, celery_workers, live_server, waiting_target, tmp_path
):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "go.xml").write_bytes((SAMPLES / "gotestsum.xml").read_bytes())
    args = ["auto", "--receiver", waiting_target.phid, "--base-url", live_server.url]
    args += ["--junit", f"{tmp_path}/reports/*.xml"]
    environ = {**GITHUB, "HARBOR_TARGET_SECRET": target_secret(waiting_target.phid)}

    done = run(harbor_report_command, *args, **environ)
    assert done.returncode == 0, done.stderr
    assert "pass accepted" in done.stdout
    wait_for(lambda: Build.objects.get(pk=waiting_target.build_id).status == "passed")
    assert UnitResult.objects.filter(target=waiting_target).count() == 3

    rerun = run(harbor_report_command, *args, **environ, GITHUB_RUN_ATTEMPT="2")
    assert rerun.returncode == 3, rerun.stderr
    assert "pass duplicate" in rerun.stdout

    late = run(harbor_report_command, "fail", *args[1:], **environ)
    assert late.returncode == 4
    assert "fail refused (HTTP 409 conflict)" in late.stderr
    assert "[target passed, build passed]" in late.stderr
    assert BuildMessage.objects.count() == 1
    for output in (done, rerun, late):
        assert environ["HARBOR_TARGET_SECRET"] not in output.stdout + output.stderr


@pytest.mark.workers
@pytest.mark.workers
def test_reports_of_pytest_surefire_and_go_junit_report_and_both_lint_formats_arrive_whole(
    harbor_report_command, celery_workers, live_server, waiting_target, tmp_path, api_token
):
    """A ``work`` message with what pytest (run for real) wrote and a JSON lint list, then
    ``auto`` with Surefire's and go-junit-report's reports and checkstyle lint: ``fail``,
    since both hold a failure. Authenticated with an API token this time."""
    (tmp_path / "project").mkdir()
    pytest_report = run_pytest_on_sample_project(tmp_path / "project")
    (tmp_path / "lint.json").write_text(
        json.dumps([{"name": "unused", "code": "F401", "severity": "warning", "path": "a.py"}])
    )
    (tmp_path / "checkstyle.xml").write_text(CHECKSTYLE)
    common = ["--receiver", waiting_target.phid, "--base-url", live_server.url]
    environ = {"HARBOR_TOKEN": api_token, "GITLAB_CI": "true"}
    environ |= {"CI_PIPELINE_ID": "77", "CI_JOB_NAME": "test"}

    work = run(
        harbor_report_command,
        "work",
        *common,
        "--junit",
        str(pytest_report),
        "--lint",
        str(tmp_path / "lint.json"),
        **environ,
    )
    assert work.returncode == 0, work.stderr
    assert (
        "work accepted" in work.stdout
        and "5 tests: 2 pass, 1 fail, 1 broken, 1 skip" in work.stdout
    )
    verdict = run(
        harbor_report_command,
        "auto",
        *common,
        "--junit",
        str(SAMPLES / "surefire.xml"),
        "--junit",
        str(SAMPLES / "go-junit-report.xml"),
        "--lint",
        str(tmp_path / "checkstyle.xml"),
        **environ,
    )
    assert verdict.returncode == 0, verdict.stderr
    assert "fail accepted" in verdict.stdout

    wait_for(lambda: Build.objects.get(pk=waiting_target.build_id).status == "failed")
    results = dict(UnitResult.objects.filter(target=waiting_target).values_list("name", "result"))
    assert len(results) == 5 + 4 + 4
    assert results["test_wrong_on_purpose"] == "fail"
    assert results["test_needs_a_broken_fixture"] == "broken"
    assert results["parsesTheConfig"] == "fail"
    assert results["talksToTheDatabase"] == "skip"
    assert results["TestTotal/rounding"] == "fail"
    assert results["TestParse"] == "pass"
    lint = LintMessage.objects.filter(target=waiting_target).order_by("id")
    assert list(lint.values_list("code", "severity", "path")) == [
        ("F401", "warning", "a.py"),
        ("eslint.rules.no-unused-vars", "error", "src/app.js"),
        ("eslint.rules.prefer-const", "advice", "src/app.js"),
    ]


def test_a_report_answered_503_is_sent_again_and_accepted_once(
    harbor_report_command, celery_workers, live_server, httpserver, api_token, waiting_target
):
    """A proxy in front of Harbor answers the first attempt 503 with Retry-After, as Harbor
    does while its database is down, and forwards every later one."""

    def forward(request):
        answer = requests.post(
            live_server.url + request.path,
            data=request.get_data(),
            headers={k: request.headers[k] for k in ("Authorization", "Content-Type")},
            timeout=30,
        )
        return Response(answer.content, answer.status_code, content_type="application/json")

    unavailable = {"error": "unavailable", "detail": "Harbor's database is unavailable."}
    proxy = httpserver.expect_ordered_request("/api/v1/sendmessage", method="POST")
    proxy.respond_with_json(unavailable, status=503, headers={"Retry-After": "1"})
    httpserver.expect_ordered_request("/api/v1/sendmessage").respond_with_handler(forward)

    done = run(
        harbor_report_command,
        "pass",
        "--receiver",
        waiting_target.phid,
        "--base-url",
        httpserver.url_for("/"),
        HARBOR_TOKEN=api_token,
        GITLAB_CI="true",
        CI_PIPELINE_ID="901",
        CI_JOB_NAME="test",
    )
    assert done.returncode == 0, done.stderr
    assert "HTTP 503; trying again" in done.stderr
    assert done.stderr.count("\n") == 1, "one line for the one retry, no library's own"
    first, second = (json.loads(request.get_data()) for request, _ in httpserver.log)
    assert first["idempotency_key"] == second["idempotency_key"]
    message = BuildMessage.objects.get()
    assert message.idempotency_key == first["idempotency_key"]
    assert message.type == "pass"


def test_an_unreachable_harbor_is_tried_again_one_line_a_retry_then_exit_1(
    harbor_report_command, unused_port
):
    done = run(
        harbor_report_command,
        "pass",
        "--receiver",
        "PHID-HMBT-aaaaaaaaaaaaaaaaaaaa",
        "--base-url",
        f"http://127.0.0.1:{unused_port}",
        "--attempts",
        "3",
        "--idempotency-key",
        "job-1",
        HARBOR_TOKEN="not-echoed-token",
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert [line.endswith(("(2 attempts left)", "(1 attempt left)")) for line in lines[:2]] == [
        True,
        True,
    ]
    assert len(lines) == 3, "one line for each retry, none doubled by urllib3's own log"
    assert lines[2].startswith("harbor-report: could not reach Harbor at http://127.0.0.1:")
    assert "not-echoed-token" not in done.stdout + done.stderr


@pytest.fixture
def unused_port() -> int:
    """A local port nothing listens on (bound, read, closed: connecting is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_wrong_token_is_refused_401_with_exit_4_and_never_printed(
    harbor_report_command, live_server
):
    done = run(
        harbor_report_command,
        "pass",
        "--receiver",
        "PHID-HMBT-aaaaaaaaaaaaaaaaaaaa",
        "--base-url",
        live_server.url,
        "--idempotency-key",
        "job-1",
        HARBOR_TOKEN="api-revoked-or-never-issued",
    )
    assert done.returncode == 4
    assert "pass refused (HTTP 401 authentication_failed)" in done.stderr
    assert "api-revoked-or-never-issued" not in done.stdout + done.stderr
    assert BuildMessage.objects.count() == 0
