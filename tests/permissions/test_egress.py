"""``HARBOR_HTTP_ALLOWED_URLS``: which hosts and schemes HTTP steps may reach, including
after a redirect, and the clear log line a refused URL leaves on its failed target."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from werkzeug import Response

from builds.egress import check_url_allowed, url_refusal
from builds.models import BuildTarget
from builds.secrets import MASK, target_secret
from tests.steps.conftest import log_text, make_target, run_step
from workers.steps import StepFailed
from workers.tasks import run_target

LOCAL_ONLY = ["http://127.0.0.1:*", "https://*.example.com", "https://ci.example.org:8443"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9900/run?x=1",
        "http://127.0.0.1/run",
        "https://ci.example.com/hook",
        "https://a.b.EXAMPLE.com:443/",
        "https://ci.example.org:8443/x",
    ],
)
def test_urls_matching_a_pattern_are_allowed(settings, url):
    settings.HARBOR_HTTP_ALLOWED_URLS = LOCAL_ONLY
    assert url_refusal(url) is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://10.0.0.5/admin", "http://10.0.0.5:80"),
        ("http://localhost:9900/run", "http://localhost:9900"),
        ("https://example.com/", "https://example.com:443"),  # *. needs a subdomain
        ("http://ci.example.com/", "http://ci.example.com:80"),  # the pattern is https
        ("https://ci.example.com:8443/", "https://ci.example.com:8443"),  # not port 443
        ("https://ci.example.org/x", "https://ci.example.org:443"),  # only port 8443
        ("https://evil.com#.example.com", "https://evil.com:443"),
        ("http://127.0.0.1:80@169.254.169.254/latest", "http://169.254.169.254:80"),
        ("http://[::1]:9900/", "http://[::1]:9900"),
    ],
)
def test_other_urls_are_refused_naming_only_their_origin(settings, url, shown):
    settings.HARBOR_HTTP_ALLOWED_URLS = LOCAL_ONLY
    refusal = url_refusal(url)
    assert refusal.startswith(f"Harbor may not reach {shown}: it matches none of")
    assert "/admin" not in refusal and "/latest" not in refusal


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "http:///x", "x"])
def test_only_http_and_https_urls_with_a_host_are_ever_allowed(settings, url):
    settings.HARBOR_HTTP_ALLOWED_URLS = ["http://*:*", "https://*:*"]
    assert "only make HTTP requests to http:// or https://" in url_refusal(url)


def test_the_default_allows_any_http_and_https_host_and_port(settings):
    for url in ["http://10.1.2.3:81/", "https://anything.example.net/"]:
        assert url_refusal(url) is None


def test_an_ipv6_pattern_matches_its_address(settings):
    settings.HARBOR_HTTP_ALLOWED_URLS = ["http://[::1]:*"]
    assert url_refusal("http://[::1]:9900/run") is None


def test_a_pattern_with_a_path_is_a_configuration_error(settings):
    settings.HARBOR_HTTP_ALLOWED_URLS = ["https://ci.example.com/hooks"]
    with pytest.raises(ImproperlyConfigured, match="scheme://host"):
        check_url_allowed("https://ci.example.com/hooks")


@pytest.mark.django_db
def test_an_http_step_to_a_disallowed_host_fails_before_sending(buildable, httpserver, settings):
    settings.HARBOR_HTTP_ALLOWED_URLS = ["https://*.example.com"]
    target = make_target("http", {"uri": httpserver.url_for("/run")}, buildable)
    with pytest.raises(StepFailed, match="Harbor may not reach http://localhost"):
        run_step(target)
    assert len(httpserver.log) == 0
    assert "HARBOR_HTTP_ALLOWED_URLS" in log_text(target, "http.error")


@pytest.mark.django_db
def test_the_failed_target_tells_why_in_its_log(buildable, httpserver, settings):
    settings.HARBOR_HTTP_ALLOWED_URLS = ["https://*.example.com"]
    target = make_target("http", {"uri": httpserver.url_for("/run")}, buildable)
    BuildTarget.objects.filter(pk=target.pk).update(status="pending", attempt=0)
    run_target(target.pk)
    target.refresh_from_db()
    assert target.status == "failed"
    logged = "".join(log.text for log in target.logs.all())
    assert "Harbor may not reach http://localhost" in logged


@pytest.mark.django_db
def test_a_redirect_to_a_disallowed_host_is_not_followed(buildable, httpserver, settings):
    settings.HARBOR_HTTP_ALLOWED_URLS = ["http://localhost:*"]
    httpserver.expect_request("/run").respond_with_response(
        Response(status=302, headers={"Location": "http://127.0.0.1:1/metadata"})
    )
    target = make_target("http", {"uri": httpserver.url_for("/run")}, buildable)
    with pytest.raises(StepFailed, match="Harbor may not reach http://127.0.0.1:1"):
        run_step(target)


@pytest.mark.django_db
def test_a_redirect_to_an_allowed_host_is_followed(buildable, httpserver, settings):
    settings.HARBOR_HTTP_ALLOWED_URLS = ["http://localhost:*"]
    httpserver.expect_request("/run").respond_with_response(
        Response(status=302, headers={"Location": "/final"})
    )
    httpserver.expect_request("/final").respond_with_data("ok")
    run_step(make_target("http", {"uri": httpserver.url_for("/run")}, buildable))


@pytest.mark.django_db
def test_the_http_step_masks_the_target_secret_in_its_logs(buildable, httpserver):
    """The secret reaches the outside system, but no log shows it, even echoed back."""
    uri = httpserver.url_for("/run") + "?cb=${target.secret}"
    config = {"uri": uri, "headers": {"X-Secret": "${target.secret}"}}
    target = make_target("http", config, buildable)
    secret = target_secret(target.phid)
    httpserver.expect_request(
        "/run", query_string={"cb": secret}, headers={"X-Secret": secret}
    ).respond_with_data(f"got {secret}", status=500)
    with pytest.raises(StepFailed) as failure:
        run_step(target)
    httpserver.check_assertions()
    logs = list(target.logs.all())
    assert logs and all(secret not in log.source + log.text for log in logs)
    assert f"?cb={MASK}" in logs[0].source
    assert f"got {MASK}" in log_text(target, "http.body")
    assert secret not in str(failure.value) and MASK in str(failure.value)


@pytest.mark.django_db
def test_a_failed_connection_masks_the_secret_in_the_error(buildable, settings):
    target = make_target("http", {"uri": "http://127.0.0.1:1/x?cb=${target.secret}"}, buildable)
    secret = target_secret(target.phid)
    with pytest.raises(StepFailed) as failure:
        run_step(target)
    assert secret not in str(failure.value)
    assert secret not in log_text(target, "http.error")
    assert secret not in "".join(log.source for log in target.logs.all())


@override_settings(HARBOR_HTTP_ALLOWED_URLS=["http://*:*"])
def test_settings_are_read_at_each_check():
    assert url_refusal("https://example.com/") is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1\\.ci.example.com/",
        "https://169.254.169.254\\.ci.example.com/latest/meta-data",
        "http://127.0.0.1\t.ci.example.com/",
        "http://a.ci.example.com\\@127.0.0.1/",
    ],
)
def test_urls_that_parsers_read_differently_are_refused(settings, url):
    """urlsplit reads these hosts as under ci.example.com; urllib3, which sends the
    request, would connect elsewhere (127.0.0.1, the metadata address)."""
    settings.HARBOR_HTTP_ALLOWED_URLS = ["http://*.ci.example.com", "https://*.ci.example.com"]
    assert url_refusal(url) is not None
