"""The ``http`` step against a real local HTTP server (pytest-httpserver)."""

import base64
import json

import pytest
from werkzeug import Response

from builds.models import BuildLog
from tests.steps.conftest import log_text, make_target, run_step
from workers.steps import StepFailed

pytestmark = pytest.mark.django_db


def all_logs(target) -> str:
    return "\n".join(log.text for log in BuildLog.objects.filter(target=target))


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
def test_it_sends_the_configured_method_and_passes_on_2xx(buildable, httpserver, method):
    httpserver.expect_oneshot_request("/hook", method=method).respond_with_data("ok", status=204)
    target = make_target("http", {"uri": httpserver.url_for("/hook"), "method": method}, buildable)
    run_step(target)
    httpserver.check_assertions()
    assert "HTTP 204" in log_text(target, "http.head")


def test_variables_in_the_uri_are_uri_encoded(buildable, httpserver):
    httpserver.expect_oneshot_request(
        "/run", query_string={"ref": "feature/a b&c=d", "build": "x"}
    ).respond_with_data("ok")
    uri = httpserver.url_for("/run") + "?ref=${build.param.ref}&build=x"
    target = make_target("http", {"uri": uri}, buildable, parameters={"ref": "feature/a b&c=d"})
    run_step(target)
    httpserver.check_assertions()


def test_headers_take_variables_and_a_line_break_in_one_is_refused(buildable, httpserver):
    config = {"uri": httpserver.url_for("/h"), "headers": {"X-Target": "${target.phid}"}}
    target = make_target("http", config, buildable)
    httpserver.expect_oneshot_request("/h", headers={"X-Target": target.phid}).respond_with_data(
        "ok"
    )
    run_step(target)
    httpserver.check_assertions()

    bad = make_target(
        "http",
        {"uri": httpserver.url_for("/h"), "headers": {"X-Note": "${build.param.note}"}},
        buildable,
        parameters={"note": "a\r\nX-Injected: yes"},
    )
    with pytest.raises(StepFailed, match="line break"):
        run_step(bad)


def test_a_structured_body_is_sent_as_json_with_each_variable_one_json_string(
    buildable, httpserver
):
    note = 'say "hi"\\ }, "evil": true'
    received = {}

    def handler(request):
        received["type"] = request.headers["Content-Type"]
        received["body"] = json.loads(request.get_data())
        return Response("ok")

    httpserver.expect_oneshot_request("/json", method="POST").respond_with_handler(handler)
    config = {
        "uri": httpserver.url_for("/json"),
        "body": {"target": "${target.phid}", "note": "${build.param.note}", "n": [1, True]},
    }
    target = make_target("http", config, buildable, parameters={"note": note})
    run_step(target)
    assert received["type"] == "application/json"
    assert received["body"] == {"target": target.phid, "note": note, "n": [1, True]}


def test_a_text_body_is_sent_as_written_with_variables_substituted(buildable, httpserver):
    httpserver.expect_oneshot_request("/text", data="commit=" + "a" * 40).respond_with_data("ok")
    config = {
        "uri": httpserver.url_for("/text"),
        "body": "commit=${buildable.commit}",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }
    run_step(make_target("http", config, buildable))
    httpserver.check_assertions()


def test_a_credential_is_sent_as_basic_auth_and_never_logged(buildable, httpserver, settings):
    settings.HARBOR_CREDENTIALS = {"ci": {"username": "robot", "password": "s3cret-pass"}}
    expected = "Basic " + base64.b64encode(b"robot:s3cret-pass").decode()
    httpserver.expect_oneshot_request(
        "/auth", headers={"Authorization": expected}
    ).respond_with_data("welcome")
    config = {"uri": httpserver.url_for("/auth"), "credential": "ci"}
    target = make_target("http", config, buildable)
    run_step(target)
    httpserver.check_assertions()
    logged = all_logs(target)
    assert "welcome" in logged
    assert "s3cret-pass" not in logged and "cm9ib3Q6" not in logged


def test_an_unknown_credential_fails_the_step(buildable, httpserver, settings):
    settings.HARBOR_CREDENTIALS = {}
    target = make_target("http", {"uri": httpserver.url_for("/"), "credential": "x"}, buildable)
    with pytest.raises(StepFailed, match="No credential named 'x'"):
        run_step(target)


def test_a_non_2xx_answer_fails_and_the_response_is_logged(buildable, httpserver):
    httpserver.expect_oneshot_request("/down").respond_with_data(
        "maintenance", status=503, headers={"X-Why": "upgrade"}
    )
    target = make_target("http", {"uri": httpserver.url_for("/down")}, buildable)
    with pytest.raises(StepFailed, match="HTTP 503"):
        run_step(target)
    assert "HTTP 503" in log_text(target, "http.head")
    assert "X-Why: upgrade" in log_text(target, "http.head")
    assert log_text(target, "http.body") == "maintenance"


def test_redirects_are_followed(buildable, httpserver):
    httpserver.expect_oneshot_request("/old").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/new")}
    )
    httpserver.expect_oneshot_request("/new").respond_with_data("moved here")
    target = make_target("http", {"uri": httpserver.url_for("/old"), "method": "GET"}, buildable)
    run_step(target)
    assert log_text(target, "http.body") == "moved here"
    assert "Redirected: 302" in log_text(target, "http.head")


def test_more_redirects_than_the_limit_fail(buildable, httpserver):
    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/loop")}
    )
    config = {"uri": httpserver.url_for("/loop"), "method": "GET", "max_redirects": 3}
    target = make_target("http", config, buildable)
    with pytest.raises(StepFailed, match="redirects"):
        run_step(target)
    assert len(httpserver.log) == 4  # the request and three redirects


def test_a_server_that_does_not_answer_fails_the_step(buildable):
    target = make_target("http", {"uri": "http://127.0.0.1:9/nothing"}, buildable)
    with pytest.raises(StepFailed, match="failed"):
        run_step(target)
