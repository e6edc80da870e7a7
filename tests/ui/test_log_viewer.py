"""The log viewer: numbered coloured lines a window at a time, a link to a line, a search,
and a live tail that polls cheaply."""

import re

import pytest
from django.urls import reverse

from builds.models import BuildLog, BuildLogChunk
from tests.ui.conftest import make_build, make_target, plan_of

pytestmark = pytest.mark.django_db

TEXT = "".join(f"line {n}\n" for n in range(1, 1201)).replace(
    "line 900\n", "\x1b[31mline 900 FAILED\x1b[0m\n"
)


@pytest.fixture
def log(buildable):
    target = make_target(make_build(plan_of(1), buildable), "step-0")
    log = BuildLog.objects.create(target=target, source="make", log_type="stdout", is_live=False)
    BuildLogChunk.objects.bulk_create(
        BuildLogChunk(log=log, text=TEXT[i : i + 1000]) for i in range(0, len(TEXT), 1000)
    )
    return log


def get(client, log, **params) -> str:
    response = client.get(reverse("log-detail", args=[log.id]), params)
    assert response.status_code == 200
    return response.content.decode()


def numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<span class="line" id="L(\d+)">', html)]


def test_it_shows_the_last_lines_by_default_with_links_to_earlier_ones(signed_in, log):
    html = get(signed_in, log)
    assert numbers(html) == list(range(701, 1201))
    assert "Lines 701–1200 of 1200" in html
    assert 'href="?from=201"' in html and 'href="?from=1"' in html
    assert 'hx-trigger="every 2s"' not in html  # a closed log does not poll


def test_a_line_link_opens_a_window_holding_that_line_coloured(signed_in, log):
    html = get(signed_in, log, line=900)
    assert numbers(html)[0] == 880 and 900 in numbers(html)
    assert (
        '<span class="line" id="L900"><a class="ln" href="?line=900#L900" data-n="900" '
        'aria-label="Line 900"></a><span class="ansi-fg-red">line 900 FAILED</span>'
    ) in html
    assert "\x1b" not in html


def test_a_search_lists_matching_lines_with_links_to_them(signed_in, log):
    html = get(signed_in, log, q="failed")
    assert "1 line with “failed”" in html
    assert 'href="?line=900&amp;q=failed#L900"' in html


def test_a_search_that_matches_nothing_says_so(signed_in, log):
    assert "No line holds this text." in get(signed_in, log, q="nowhere")


def test_the_viewer_costs_the_same_queries_for_any_window(
    signed_in, log, django_assert_max_num_queries
):
    with django_assert_max_num_queries(9):  # session, user, version, log, index, text, end
        get(signed_in, log, **{"from": 3})


def test_a_live_tail_polls_and_gets_204_until_the_log_grows(signed_in, log):
    BuildLog.objects.filter(pk=log.pk).update(is_live=True)
    html = get(signed_in, log)
    poll = re.search(r'hx-get="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert signed_in.get(poll).status_code == 204
    BuildLogChunk.objects.create(log=log, text="line 1201\n")
    response = signed_in.get(poll)
    assert response.status_code == 200 and 'id="L1201"' in response.content.decode()


def test_the_viewer_needs_signing_in(client, log):
    assert client.get(reverse("log-detail", args=[log.id])).status_code == 302
