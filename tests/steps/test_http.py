"""The ``http`` step against a real local HTTP server (pytest-httpserver)."""

import base64
import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from werkzeug import Response

from builds.models import BuildLog
from harbor.credentials import load_credentials
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


def test_a_bearer_credential_is_sent_as_a_bearer_token_and_never_logged(
    buildable, httpserver, settings
):
    settings.HARBOR_CREDENTIALS = {"ci": {"type": "bearer", "token": "tok-7e1d-bearer"}}
    httpserver.expect_oneshot_request(
        "/bearer", headers={"Authorization": "Bearer tok-7e1d-bearer"}
    ).respond_with_data("echo tok-7e1d-bearer")
    target = make_target(
        "http", {"uri": httpserver.url_for("/bearer"), "credential": "ci"}, buildable
    )
    run_step(target)
    httpserver.check_assertions()
    logged = all_logs(target)
    assert "echo ********" in logged and "tok-7e1d-bearer" not in logged
    assert "Authorization: ******** (credential 'ci')" in log_text(target, "http.request")


def test_a_header_credential_is_sent_in_its_header_and_never_logged(
    buildable, httpserver, settings
):
    settings.HARBOR_CREDENTIALS = {
        "deploy": {"type": "header", "header": "X-Api-Key", "value": "key-93f0-header"}
    }
    httpserver.expect_oneshot_request(
        "/key", headers={"X-Api-Key": "key-93f0-header"}
    ).respond_with_data("ok")
    config = {"uri": httpserver.url_for("/key"), "credential": "deploy", "method": "GET"}
    target = make_target("http", config, buildable)
    run_step(target)
    httpserver.check_assertions()
    assert "key-93f0-header" not in all_logs(target)


def test_a_header_credential_does_not_follow_a_redirect_to_another_host(
    buildable, httpserver, settings
):
    settings.HARBOR_CREDENTIALS = {
        "deploy": {"type": "header", "header": "X-Api-Key", "value": "key-93f0-header"}
    }
    # The same server under another host name: localhost and 127.0.0.1.
    start = httpserver.url_for("/start").replace("localhost", "127.0.0.1")
    elsewhere = start.replace("127.0.0.1", "localhost").replace("/start", "/elsewhere")
    httpserver.expect_oneshot_request("/start").respond_with_data(
        "", status=302, headers={"Location": elsewhere}
    )
    httpserver.expect_oneshot_request("/elsewhere").respond_with_data("arrived")
    config = {"uri": start, "credential": "deploy", "method": "GET"}
    run_step(make_target("http", config, buildable))
    first, second = (request for request, _ in httpserver.log)
    assert first.headers.get("X-Api-Key") == "key-93f0-header"
    assert second.headers.get("X-Api-Key") is None


@pytest.mark.parametrize(
    ("entries", "named"),
    [
        ('{"ci": {"username": "robot"}}', "'ci'.*password"),
        ('{"ci": {"type": "bearer", "token": ""}}', "'ci'.*token"),
        ('{"ci": {"type": "header", "value": "v-secret"}}', "'ci'.*header"),
        ('{"ci": {"type": "header", "header": "X-A\\nB", "value": "v-secret"}}', "'ci'.*header"),
        ('{"ci": {"type": "header", "header": "X-Key", "value": "v-se\\ncret"}}', "'ci'.*value"),
        ('{"ci": {"type": "oauth", "token": "v-secret"}}', "'ci'.*oauth"),
        ('{"ci": {"type": "bearer", "token": "v-secret", "tokn": "x"}}', "'ci'.*tokn"),
        ('{"ci": "v-secret"}', "'ci'"),
        ('["v-secret"]', "JSON object"),
        ("{not json", "JSON"),
    ],
)
def test_it_refuses_a_malformed_credential_naming_the_entry_not_the_secret(entries, named):
    with pytest.raises(ImproperlyConfigured, match=named) as refused:
        load_credentials(entries)
    assert "HARBOR_CREDENTIALS" in str(refused.value)
    assert "v-secret" not in str(refused.value) and "v-se" not in str(refused.value)


def test_it_accepts_basic_bearer_and_header_credentials():
    entries = (
        '{"a": {"username": "u", "password": "p"}, "b": {"type": "bearer", "token": "t"},'
        ' "c": {"type": "header", "header": "X-Api-Key", "value": "v"}}'
    )
    assert set(load_credentials(entries)) == {"a", "b", "c"}


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
