"""The ``harbor-report`` command line against a stand-in Harbor (pytest-httpserver): what it
sends, how it retries, and the exit status a shell script acts on."""

import json
import time

import pytest
from pytest_httpserver import HTTPServer

from harbor_report import cli
from tests.junit.conftest import SAMPLES

RECEIVER = "PHID-HMBT-aaaaaaaaaaaaaaaaaaaa"
SECRET = "s3cr3t-callback-value"
GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "77", "GITHUB_JOB": "test"}
ACCEPTED = {"id": 5, "receiver": RECEIVER, "type": "pass", "status": "accepted"}


def report(server: HTTPServer, *args: str, environ: dict | None = None) -> int:
    environ = {"HARBOR_TARGET_SECRET": SECRET, **GITHUB} if environ is None else environ
    argv = [*args, "--receiver", RECEIVER, "--base-url", server.url_for("/")]
    return cli.main(argv, environ)


def sent(server: HTTPServer) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in server.log]


def expect(server: HTTPServer, body: dict, status: int, **headers: str) -> None:
    server.expect_ordered_request("/api/v1/sendmessage", method="POST").respond_with_json(
        body, status=status, headers=headers
    )


def test_it_sends_the_verdict_with_junit_and_lint_and_exits_0(httpserver, tmp_path, capsys):
    lint = tmp_path / "lint.json"
    lint.write_text('[{"name": "n", "code": "c", "severity": "error", "path": "p"}]')
    expect(httpserver, {**ACCEPTED, "type": "fail"}, 202)
    status = report(
        httpserver, "auto", "--junit", str(SAMPLES / "surefire.xml"), "--lint", str(lint)
    )
    assert status == cli.ACCEPTED
    (body,) = sent(httpserver)
    assert (body["receiver"], body["type"]) == (RECEIVER, "fail")
    assert body["idempotency_key"] == f"harbor-report:github:77:test:{RECEIVER}:fail"
    assert [u["result"] for u in body["unit"]] == ["pass", "pass", "fail", "skip"]
    assert body["lint"][0]["code"] == "c"
    request = httpserver.log[0][0]
    assert request.headers["Authorization"] == f"Harbor-Target-Secret {SECRET}"
    assert "fail accepted: message 5" in capsys.readouterr().out


def test_a_token_is_sent_as_a_bearer_token(httpserver):
    expect(httpserver, ACCEPTED, 202)
    status = report(httpserver, "pass", "--token-env", "CI_TOKEN", environ={"CI_TOKEN": "api-x"})
    assert status == cli.ACCEPTED
    assert httpserver.log[0][0].headers["Authorization"] == "Bearer api-x"


@pytest.mark.parametrize("busy", [429, 503])
def test_it_retries_after_the_wait_harbor_asks_for_with_the_same_key(httpserver, busy):
    expect(httpserver, {"error": "unavailable", "detail": "down"}, busy, **{"Retry-After": "1"})
    expect(httpserver, ACCEPTED, 202)
    started = time.monotonic()
    assert report(httpserver, "pass") == cli.ACCEPTED
    assert time.monotonic() - started >= 1
    first, second = sent(httpserver)
    assert first == second


def test_a_duplicate_exits_3(httpserver, capsys):
    expect(httpserver, {**ACCEPTED, "status": "duplicate"}, 200)
    assert report(httpserver, "pass") == cli.DUPLICATE
    assert "pass duplicate" in capsys.readouterr().out


def test_a_refusal_exits_4_with_harbors_reason_and_statuses(httpserver, capsys):
    refusal = {
        "error": "conflict",
        "detail": "The target is already passed.",
        "target_status": "passed",
        "build_status": "passed",
    }
    expect(httpserver, refusal, 409)
    assert report(httpserver, "fail") == cli.REFUSED
    err = capsys.readouterr().err
    assert "fail refused (HTTP 409 conflict): The target is already passed." in err
    assert "[target passed, build passed]" in err


def test_an_unreachable_harbor_exits_1_after_every_attempt(httpserver, capsys):
    url = httpserver.url_for("/")
    httpserver.stop()
    environ = {"HARBOR_TARGET_SECRET": SECRET}
    argv = ["pass", "--receiver", RECEIVER, "--base-url", url, "--attempts", "2"]
    assert cli.main(argv, environ) == cli.ERROR
    err = capsys.readouterr().err
    assert "could not reach Harbor" in err and "in 2 attempts" in err
    assert SECRET not in err
    httpserver.start()


def test_auto_without_test_results_sends_nothing_and_exits_1(httpserver, tmp_path, capsys):
    assert report(httpserver, "auto", "--junit", str(tmp_path / "*.xml")) == cli.ERROR
    assert not httpserver.log
    err = capsys.readouterr().err
    assert "no file matches" in err and "auto needs test results" in err


def test_without_credentials_it_is_a_usage_error(httpserver, capsys):
    with pytest.raises(SystemExit) as exited:
        report(httpserver, "pass", environ={})
    assert exited.value.code == cli.USAGE
    assert "HARBOR_TARGET_SECRET or HARBOR_TOKEN" in capsys.readouterr().err
    assert not httpserver.log
