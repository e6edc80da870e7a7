"""A build page's runs (generations), steps in dependency order, durations, external links,
masked settings, and the log download."""

import pytest
from django.urls import reverse

from builds.models import Artifact, BuildLog, BuildLogChunk, StatusEvent
from tests.conftest import make_plan
from tests.ui.conftest import make_build, make_target, plan_of

pytestmark = pytest.mark.django_db


def get(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_an_earlier_run_shows_its_own_targets_by_path_and_by_query(signed_in, buildable):
    build = make_build(plan_of(1), buildable, generation=2)
    make_target(build, "step-0", generation=1, status="aborted", name="Old run")
    make_target(build, "step-0", generation=2, status="building", name="New run")
    for url in (
        reverse("build-run", args=[build.id, 1]),
        build.get_absolute_url() + "?generation=1",
    ):
        html = get(signed_in, url)
        assert "Old run" in html and "New run" not in html
        assert "an earlier run" in html
    current = get(signed_in, build.get_absolute_url())
    assert "Run 2 (current)" in current and reverse("build-run", args=[build.id, 1]) in current


def test_a_run_the_build_never_had_is_404(signed_in, buildable):
    build = make_build(plan_of(1), buildable, generation=2)
    assert signed_in.get(reverse("build-run", args=[build.id, 3])).status_code == 404
    assert signed_in.get(reverse("build-run", args=[build.id, 0])).status_code == 404


def test_steps_follow_dependencies_not_the_order_the_plan_lists_them(signed_in, buildable):
    plan = make_plan(
        "diamond",
        [
            {"key": "deploy", "depends_on": ["test", "lint"]},
            {"key": "test", "depends_on": ["compile"]},
            {"key": "lint"},
            {"key": "compile"},
        ],
    )
    html = get(signed_in, make_build(plan, buildable).get_absolute_url())
    positions = [html.index(f'id="step-{key}"') for key in ("lint", "compile", "test", "deploy")]
    assert positions == sorted(positions)


def test_a_waiting_target_says_how_long_it_has_waited(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    target = make_target(build, "step-0", status="waiting")
    event = StatusEvent.objects.create(
        target=target, from_status="building", to_status="waiting", cause="worker"
    )
    StatusEvent.objects.filter(pk=event.pk).update(at=event.at.replace(year=event.at.year - 1))
    assert "waiting for " in get(signed_in, build.get_absolute_url())


def test_external_uri_artifacts_become_links_but_never_javascript(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    target = make_target(build, "step-0")
    for key, uri in (("ci", "https://ci.example/42"), ("evil", "javascript:alert(1)")):
        Artifact.objects.create(
            target=target,
            build=build,
            generation=1,
            key=key,
            artifact_type="uri",
            data={"uri": uri, "name": f"link {key}", "ui.external": True},
        )
    html = get(signed_in, build.get_absolute_url())
    assert 'href="https://ci.example/42"' in html and "link ci" in html
    assert "javascript:alert" not in html.split('class="external-links"')[1].split("</nav>")[0]
    assert 'href="javascript:' not in html


def test_configuration_and_variables_mask_secrets(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    make_target(
        build,
        "step-0",
        config={"uri": "https://ci/run?key=s3cr3t-value", "auth": {"password": "hunter22"}},
        variables={"target.secret": "s3cr3t-value", "build.id": "7", "api_token": "tok-123"},
    )
    html = get(signed_in, build.get_absolute_url())
    for secret in ("s3cr3t-value", "hunter22", "tok-123"):
        assert secret not in html
    assert "https://ci/run?key=********" in html and "auth" in html
    assert ">7</code>" in html  # harmless variables stay readable


def test_the_log_downloads_whole_as_plain_text(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    log = BuildLog.objects.create(target=make_target(build, "step-0"), source="http", log_type="o")
    for text in ("first\n", "second\n", "third\n"):
        BuildLogChunk.objects.create(log=log, text=text)
    assert f'href="{reverse("log-download", args=[log.id])}"' in get(
        signed_in, build.get_absolute_url()
    )
    response = signed_in.get(reverse("log-download", args=[log.id]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == b"first\nsecond\nthird\n"


def test_the_log_download_needs_signing_in(client, buildable):
    build = make_build(plan_of(1), buildable)
    log = BuildLog.objects.create(target=make_target(build, "step-0"), source="s", log_type="o")
    assert client.get(reverse("log-download", args=[log.id])).status_code == 302
