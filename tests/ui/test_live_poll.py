"""The build page's live region polls with the version of each section it shows: a poll
that finds nothing changed gets an empty 204 (htmx swaps nothing) for a few queries; a poll
after a change gets only the sections that changed, for only their queries, and the new
versions in its next poll."""

import html as html_module
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from builds.models import (
    Artifact,
    BuildLog,
    BuildLogChunk,
    BuildMessage,
    StatusEvent,
    UnitResult,
)
from tests.ui.conftest import make_build, make_target, plan_of, report

pytestmark = pytest.mark.django_db

POLL_URL = re.compile(r'id="build-poll"[^>]*hx-get="([^"]+)"')
SECTIONS = re.compile(
    r'<div id="live-(\w+)" hx-swap-oob="true">|<div class="log" id="log-tail-\d+" hx-swap-oob'
)


def poll_url(client, build, **params) -> str:
    """The URL the build page's live region polls."""
    response = client.get(reverse("build-detail", args=[build.id]), params)
    return html_module.unescape(POLL_URL.search(response.content.decode()).group(1))


@pytest.fixture
def live(buildable, user):
    build = make_build(plan_of(1), buildable, status="building")
    target = make_target(build, "step-0", status="waiting")
    report(target, author=user)
    return build


def test_a_poll_that_finds_nothing_changed_answers_204_with_nothing(signed_in, live):
    url = poll_url(signed_in, live)
    for _ in range(2):
        response = signed_in.get(url)
        assert response.status_code == 204
        assert response.content == b""


def test_an_unchanged_poll_costs_at_most_four_queries(signed_in, live):
    url = poll_url(signed_in, live)
    with CaptureQueriesContext(connection) as queries:
        assert signed_in.get(url).status_code == 204
    assert len(queries.captured_queries) <= 4


def test_an_unchanged_poll_costs_the_same_for_5_and_500_unit_results(signed_in, buildable):
    costs = []
    for count in (5, 500):
        build = make_build(plan_of(1, name=f"plan-{count}"), buildable)
        target = make_target(build, "step-0")
        UnitResult.objects.bulk_create(
            UnitResult(target=target, name=f"t{i}", result="pass") for i in range(count)
        )
        url = poll_url(signed_in, build)
        with CaptureQueriesContext(connection) as queries:
            assert signed_in.get(url).status_code == 204
        costs.append(len(queries.captured_queries))
    assert costs[0] == costs[1]


def add_unit_result(build):
    UnitResult.objects.create(target=build.targets.get(), name="test_new", result="fail")


def add_status_event(build):
    StatusEvent.objects.create(target=build.targets.get(), to_status="waiting", cause="worker")


def add_command(build):
    BuildMessage.objects.create(receiver_phid=build.phid, build=build, type="pause")


def consume_message(build):
    BuildMessage.objects.filter(build=build).update(is_consumed=True, outcome="target passed")


def append_to_log(build):
    BuildLogChunk.objects.create(log=BuildLog.objects.get(target__build=build), text="more\n")


def close_log(build):
    BuildLog.objects.filter(target__build=build).update(is_live=False)


def finish_build(build):
    type(build).objects.filter(pk=build.pk).update(status="passed")


def sections(body: str) -> list[str]:
    return [match.group(1) or "log" for match in SECTIONS.finditer(body)]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (add_unit_result, ["units", "targets"]),
        (add_status_event, ["steps", "targets", "timeline"]),
        (add_command, ["head", "targets"]),
        (consume_message, ["head", "targets"]),
        (append_to_log, ["log"]),
        (close_log, ["targets"]),
        (finish_build, ["head", "steps", "targets"]),
    ],
)
def test_a_poll_after_a_change_answers_only_the_changed_sections(signed_in, live, change, expected):
    url = poll_url(signed_in, live)
    change(live)
    response = signed_in.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="build-poll"')
    assert sections(body) == expected
    assert html_module.escape(url) not in body  # the next poll carries the new versions


def test_a_poll_after_a_log_grew_sends_only_the_log_for_few_queries(signed_in, live):
    url = poll_url(signed_in, live)
    append_to_log(live)
    with CaptureQueriesContext(connection) as queries:
        response = signed_in.get(url)
    assert 'hx-swap-oob="true"' in response.content.decode()
    assert "more\n" in response.content.decode()
    # session, user, versions, build, logs, their tail chunks
    assert len(queries.captured_queries) <= 6
    assert len(response.content) < 5_000


def test_a_poll_after_a_unit_result_costs_the_same_for_5_and_500_of_them(signed_in, buildable):
    costs = []
    for count in (5, 500):
        build = make_build(plan_of(1, name=f"plan-{count}"), buildable)
        target = make_target(build, "step-0")
        UnitResult.objects.bulk_create(
            UnitResult(target=target, name=f"t{i}", result="pass") for i in range(count)
        )
        url = poll_url(signed_in, build)
        add_unit_result(build)
        with CaptureQueriesContext(connection) as queries:
            assert signed_in.get(url).status_code == 200
        costs.append(len(queries.captured_queries))
    assert costs[0] == costs[1]


def add_link(target, key: str) -> None:
    Artifact.objects.create(
        target=target,
        build=target.build,
        generation=target.generation,
        key=key,
        artifact_type="uri",
        data={"uri": f"https://ci.example/{key}", "name": f"link {key}", "ui.external": True},
    )


def test_a_poll_after_a_link_shows_it_in_the_head_but_no_superseded_attempts(signed_in, live):
    url = poll_url(signed_in, live)
    current = live.targets.get()
    type(current).objects.filter(pk=current.pk).update(step_attempt=2)
    add_link(make_target(live, "step-0", status="failed", superseded_by="retry"), "old-attempt")
    add_link(current, "current-attempt")
    body = signed_in.get(url).content.decode()
    head = body.split('id="live-head"')[1].split('id="live-')[0]
    assert 'href="https://ci.example/current-attempt"' in head
    assert "old-attempt" not in head


def test_a_poll_of_a_finished_build_stops_polling(signed_in, live):
    url = poll_url(signed_in, live)
    finish_build(live)
    body = signed_in.get(url).content.decode()
    assert '<div id="build-poll" hidden></div>' in body


def test_a_poll_keeps_the_unit_results_page_and_search_shown(signed_in, live):
    url = poll_url(signed_in, live, unit_q="broken", unit_page="1")
    assert "unit_q=broken" in url and "unit_page=1" in url and "partial=1" in url


def test_a_poll_without_versions_answers_every_section(signed_in, live):
    response = signed_in.get(reverse("build-detail", args=[live.id]), {"partial": "1"})
    assert response.status_code == 200
    assert sections(response.content.decode()) == ["head", "steps", "units", "targets", "timeline"]
