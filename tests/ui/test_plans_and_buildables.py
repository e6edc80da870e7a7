"""Plan and buildable pages."""

import pytest
from django.urls import reverse

from builds.models import Buildable
from tests.conftest import make_plan
from tests.ui.conftest import make_build, plan_of

pytestmark = pytest.mark.django_db


def test_the_plan_list_shows_each_plan_with_its_step_and_build_counts(signed_in, buildable):
    plan = plan_of(3, name="release")
    make_build(plan, buildable)
    html = signed_in.get(reverse("plan-list")).content.decode()
    assert f'href="{reverse("plan-detail", args=[plan.id])}">release<' in html
    assert "<td>3</td>" in html and f'?plan={plan.id}">1<' in html


def test_a_plan_page_shows_its_steps_in_dependency_order_and_recent_builds(signed_in, buildable):
    plan = make_plan(
        "deploy",
        [  # listed before the step it depends on
            {"key": "ship", "name": "Ship it", "depends_on": ["build"], "wait_for_message": True},
            {"key": "build", "name": "Build it", "step_type": "command"},
        ],
    )
    build = make_build(plan, buildable)
    html = signed_in.get(reverse("plan-detail", args=[plan.id])).content.decode()
    assert html.index("Build it") < html.index("Ship it")
    assert "<td>command</td>" in html and "<code>build</code>" in html and "<td>yes</td>" in html
    assert f'href="{build.get_absolute_url()}"' in html


def test_a_buildable_page_shows_its_fields_status_and_builds(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    response = signed_in.get(reverse("buildable-detail", args=[buildable.id]))
    html = response.content.decode()
    assert buildable.repository in html and buildable.commit in html and buildable.phid in html
    assert "preparing" in html
    assert f'href="{build.get_absolute_url()}"' in html


def test_a_pull_requests_buildable_page_shows_its_number_and_base_ref(signed_in):
    buildable = Buildable.objects.create(
        repository="https://github.com/acme/widgets.git",
        ref="refs/pull/7/head",
        commit="e" * 40,
        revision="7",
        base_ref="refs/heads/main",
    )
    html = signed_in.get(reverse("buildable-detail", args=[buildable.id])).content.decode()
    assert (
        '<dt>Pull request</dt><dd><a class="forge-link" '
        'href="https://github.com/acme/widgets/pull/7" rel="noopener noreferrer">#7</a>'
    ) in html
    assert "<dt>Base ref</dt><dd>refs/heads/main</dd>" in html


def test_the_build_page_links_to_its_buildable(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    html = signed_in.get(reverse("build-detail", args=[build.id])).content.decode()
    assert f'href="{buildable.get_absolute_url()}"' in html
