"""The build page's live region polls with the version it shows: a poll that finds nothing
changed gets an empty 204 (htmx swaps nothing) for a few queries; a poll after a change gets
the region, with the new version in its next poll."""

import html as html_module
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from builds.models import BuildLog, BuildLogChunk, BuildMessage, StatusEvent, UnitResult
from tests.ui.conftest import make_build, make_target, plan_of, report

pytestmark = pytest.mark.django_db

POLL_URL = re.compile(r'id="build-live"[^>]*hx-get="([^"]+)"')


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


@pytest.mark.parametrize(
    "change",
    [
        add_unit_result,
        add_status_event,
        add_command,
        consume_message,
        append_to_log,
        close_log,
        finish_build,
    ],
)
def test_a_poll_after_a_change_answers_the_region_with_its_new_version(signed_in, live, change):
    url = poll_url(signed_in, live)
    change(live)
    response = signed_in.get(url)
    assert response.status_code == 200
    region = response.content.decode()
    assert region.lstrip().startswith('<div id="build-live"')
    assert html_module.escape(url) not in region  # the next poll carries the new version


def test_a_poll_keeps_the_unit_results_page_and_search_shown(signed_in, live):
    url = poll_url(signed_in, live, unit_q="broken", unit_page="1")
    assert "unit_q=broken" in url and "unit_page=1" in url and "partial=1" in url


def test_a_poll_without_a_version_answers_the_region(signed_in, live):
    response = signed_in.get(reverse("build-detail", args=[live.id]), {"partial": "1"})
    assert response.status_code == 200
    assert 'id="build-live"' in response.content.decode()
