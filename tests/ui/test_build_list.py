"""The build list: newest first, filters, pages, and polling while anything can change."""

import pytest
from django.urls import reverse

from builds.models import BuildMessage
from tests.ui.conftest import badge, make_build, plan_of

pytestmark = pytest.mark.django_db

POLL = 'hx-trigger="every 2s"'


def build_list(client, **params) -> str:
    response = client.get(reverse("build-list"), params)
    assert response.status_code == 200
    return response.content.decode()


def build_link(build) -> str:
    return f'href="{build.get_absolute_url()}"'


def test_builds_are_listed_newest_first_with_plan_buildable_status_and_initiator(
    signed_in, buildable, user
):
    plan = plan_of(1)
    older = make_build(plan, buildable, status="passed")
    newer = make_build(plan, buildable, status="failed", initiator=user)
    html = build_list(signed_in)
    assert html.index(build_link(newer)) < html.index(build_link(older))
    assert ">" + "a" * 12 + "</code>" in html  # the commit, shortened
    assert badge("failed") in html and badge("passed") in html
    assert "alice" in html and ">ci<" in html


def test_the_list_filters_by_status_and_by_plan(signed_in, buildable):
    ci, deploy = plan_of(1, "ci"), plan_of(1, "deploy")
    passed = make_build(ci, buildable, status="passed")
    failed = make_build(ci, buildable, status="failed")
    deployed = make_build(deploy, buildable, status="passed")
    html = build_list(signed_in, status="passed")
    assert build_link(passed) in html and build_link(deployed) in html
    assert build_link(failed) not in html
    html = build_list(signed_in, plan=deploy.id)
    assert build_link(deployed) in html and build_link(passed) not in html


def test_the_list_filters_by_buildable_id_or_text_and_by_initiator(signed_in, buildable, user):
    from accounts.models import User
    from builds.models import Buildable

    other = Buildable.objects.create(repository="https://example.com/tools.git", commit="c" * 40)
    bob = User.objects.create_user(username="bob", password="x")
    plan = plan_of(1)
    mine = make_build(plan, buildable, initiator=user)
    theirs = make_build(plan, other, initiator=bob)
    for value in (str(other.id), "tools.git", "ccccc"):
        html = build_list(signed_in, buildable=value)
        assert build_link(theirs) in html and build_link(mine) not in html, value
    html = build_list(signed_in, initiator="alice")
    assert build_link(mine) in html and build_link(theirs) not in html
    assert '<option value="bob">bob</option>' in html  # initiators to choose from


def test_pagination_links_keep_the_filters(signed_in, buildable, user):
    plan = plan_of(1)
    for _ in range(51):
        make_build(plan, buildable, status="passed", initiator=user)
    html = build_list(signed_in, initiator="alice", status="passed")
    assert "?initiator=alice&amp;status=passed&amp;page=2" in html


def test_unknown_filter_values_are_ignored(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    assert build_link(build) in build_list(signed_in, status="nonsense", plan="x")


def test_the_list_shows_fifty_builds_a_page(signed_in, buildable):
    plan = plan_of(1)
    builds = [make_build(plan, buildable, status="passed") for _ in range(51)]
    first = build_list(signed_in)
    assert first.count('href="/builds/') == 50
    assert build_link(builds[0]) not in first
    second = build_list(signed_in, page=2)
    assert build_link(builds[0]) in second and "Page 2 of 2" in second


def test_the_table_polls_while_a_listed_build_is_not_complete(signed_in, buildable):
    plan = plan_of(1)
    make_build(plan, buildable, status="passed")
    make_build(plan, buildable, status="building")
    html = build_list(signed_in, status="")
    assert POLL in html and "partial=1" in html


def test_the_table_stops_polling_once_every_listed_build_is_complete(signed_in, buildable):
    plan = plan_of(1)
    make_build(plan, buildable, status="passed")
    make_build(plan, buildable, status="building")
    html = build_list(signed_in, status="passed", partial="1")
    assert html.lstrip().startswith('<div id="build-table"')
    assert "hx-trigger" not in html and "hx-get" not in html


def test_a_build_with_an_unapplied_abort_is_listed_as_aborting(signed_in, buildable):
    build = make_build(plan_of(1), buildable, status="building")
    BuildMessage.objects.create(receiver_phid=build.phid, build=build, type="abort")
    assert badge("aborting") in build_list(signed_in)


@pytest.mark.parametrize("value", ["²", "٣"])
def test_filters_of_non_ascii_digits_are_ignored_or_match_as_text(signed_in, buildable, value):
    build = make_build(plan_of(1), buildable)
    assert build_link(build) in build_list(signed_in, plan=value)
    assert build_link(build) not in build_list(signed_in, buildable=value)
