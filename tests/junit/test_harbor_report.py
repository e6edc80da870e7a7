"""The stand-alone client ``python -m harbor_report``, run as a CI host would run it, against
a live Harbor."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from builds.models import BuildMessage, UnitResult
from tests.api.conftest import make_build, make_target
from tests.conftest import make_plan
from tests.junit.conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def target(buildable, user):
    plan = make_plan("ci", [{"key": "ci", "step_type": "http", "wait_for_message": True}])
    return make_target(make_build(plan, buildable, initiator=user))


def harbor_report(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin"}
    if token:
        env["HARBOR_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "harbor_report", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_it_sends_a_pytest_report_and_prints_the_result(
    live_server, api_token, target, report_by_pytest
):
    done = harbor_report(
        "--junit",
        str(report_by_pytest),
        "--receiver",
        target.phid,
        "--base-url",
        live_server.url,
        "--token",
        api_token,
    )
    assert done.returncode == 0, done.stderr
    assert "fail sent to" in done.stdout
    assert "5 tests, 2 pass, 1 fail, 1 broken, 1 skip" in done.stdout
    assert BuildMessage.objects.get().type == "fail"
    assert UnitResult.objects.count() == 5


@pytest.mark.parametrize(
    "name", ["jenkins.xml", "surefire.xml", "go-junit-report.xml", "gotestsum.xml"]
)
def test_it_sends_each_sample_format_as_work(live_server, api_token, target, name):
    done = harbor_report(
        "--junit",
        str(SAMPLES / name),
        "--receiver",
        target.phid,
        "--base-url",
        live_server.url,
        "--type",
        "work",
        token=api_token,
    )
    assert done.returncode == 0, done.stderr
    assert BuildMessage.objects.get().type == "work"
    assert UnitResult.objects.count() >= 3


def test_a_refused_report_exits_1_with_harbors_explanation(live_server, api_token):
    done = harbor_report(
        "--junit",
        str(SAMPLES / "gotestsum.xml"),
        "--receiver",
        "PHID-HMBT-aaaaaaaaaaaaaaaaaaaa",
        "--base-url",
        live_server.url,
        "--token",
        api_token,
    )
    assert done.returncode == 1
    assert "HTTP 404" in done.stderr
    assert not BuildMessage.objects.exists()


def test_no_token_is_a_usage_error(live_server):
    done = harbor_report("--junit", "x.xml", "--receiver", "r", "--base-url", live_server.url)
    assert done.returncode == 2
    assert "HARBOR_TOKEN" in done.stderr


def test_the_client_imports_only_the_standard_library_and_requests():
    allowed = set(sys.stdlib_module_names) | {"requests", "harbor_report"}
    for path in (ROOT / "harbor_report").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
