"""Pages cost a fixed number of queries, however many builds, targets and reports they show."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from builds.models import Artifact, BuildMessage, UnitResult
from tests.ui.conftest import make_build, make_target, plan_of, report

pytestmark = pytest.mark.django_db


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context.captured_queries)


def list_with(builds: int, client, buildable, user) -> int:
    plan = plan_of(1, name=f"plan-{builds}")
    for _ in range(builds):
        build = make_build(plan, buildable, initiator=user)
        BuildMessage.objects.create(receiver_phid=build.phid, build=build, type="abort")
    return count_queries(client, reverse("build-list"))


def build_page_with(targets: int, client, buildable, user, url_name="build-detail") -> int:
    """Count the queries of a build page (its current run, run 1 of 2 with ``build-run``,
    or the live region with ``partial``) showing ``targets`` targets, each with reports and
    an external link, in each of two runs."""
    build = make_build(
        plan_of(targets, name=f"plan-{targets}-{url_name}"), buildable, initiator=user, generation=2
    )
    for generation in (1, 2):
        for i in range(targets):
            target = make_target(build, f"step-{i}", generation=generation)
            report(target, author=user)
            Artifact.objects.create(
                target=target,
                build=build,
                generation=generation,
                key=f"link-{i}",
                artifact_type="uri",
                data={"uri": "https://ci.example/", "name": "CI", "ui.external": True},
            )
    args = [build.id, 1] if url_name == "build-run" else [build.id]
    return count_queries(client, reverse(url_name, args=args))


def test_the_build_list_costs_the_same_for_one_build_as_for_ten(signed_in, buildable, user):
    one = list_with(1, signed_in, buildable, user)
    ten = list_with(10, signed_in, buildable, user)  # eleven listed now
    assert one == ten


def test_the_build_page_costs_the_same_for_one_target_as_for_five(signed_in, buildable, user):
    one = build_page_with(1, signed_in, buildable, user)
    five = build_page_with(5, signed_in, buildable, user)
    assert one == five


def test_an_earlier_run_costs_the_same_for_one_target_as_for_five(signed_in, buildable, user):
    one = build_page_with(1, signed_in, buildable, user, url_name="build-run")
    five = build_page_with(5, signed_in, buildable, user, url_name="build-run")
    assert one == five


def test_the_build_page_needs_at_most_fourteen_queries(signed_in, buildable, user):
    # A dozen for the page, two for its unit results' history marks (builds.test_history).
    assert build_page_with(5, signed_in, buildable, user) <= 14


def build_page_with_queued(targets: int, client, buildable) -> int:
    """Count the queries of the page of a build whose ``targets`` steps each have a target
    queued for group "deploy", behind another build's target holding its one slot."""
    holder = make_build(plan_of(1, name=f"holder-{targets}"), buildable)
    make_target(holder, "step-0", concurrency_group="deploy", date_admitted=timezone.now())
    build = make_build(plan_of(targets, name=f"queued-{targets}"), buildable)
    for i in range(targets):
        make_target(build, f"step-{i}", status="pending", concurrency_group="deploy")
    with CaptureQueriesContext(connection) as context:
        response = client.get(reverse("build-detail", args=[build.id]))
    assert response.content.decode().count("queued for <code>deploy</code>") == targets
    return len(context.captured_queries)


def test_the_build_page_costs_the_same_for_one_queued_target_as_for_five(signed_in, buildable):
    assert build_page_with_queued(1, signed_in, buildable) == build_page_with_queued(
        5, signed_in, buildable
    )


def test_plan_and_buildable_pages_cost_the_same_for_one_build_as_for_ten(
    signed_in, buildable, user
):
    counts = []
    for builds in (1, 10):
        plan = plan_of(3, name=f"plan-{builds}")
        for _ in range(builds):
            make_build(plan, buildable, initiator=user)
        urls = [reverse("plan-detail", args=[plan.id]), reverse("plan-list")]
        urls += [reverse("buildable-detail", args=[buildable.id]), reverse("token-list")]
        counts.append([count_queries(signed_in, url) for url in urls])
    assert counts[0] == counts[1]


def build_page_with_unit_results(count: int, client, buildable, params: dict) -> int:
    build = make_build(plan_of(2, name=f"plan-units-{count}-{len(params)}"), buildable)
    for key in ("step-0", "step-1"):
        target = make_target(build, key)
        UnitResult.objects.bulk_create(
            UnitResult(target=target, name=f"test_{i}", result=("fail", "pass", "skip")[i % 3])
            for i in range(count)
        )
    with CaptureQueriesContext(connection) as context:
        response = client.get(reverse("build-detail", args=[build.id]), params)
    assert response.status_code == 200
    return len(context.captured_queries)


@pytest.mark.parametrize(
    "params", [{}, {"unit_q": "TEST_", "unit_result": "fail", "unit_page": "2"}]
)
def test_the_build_page_costs_the_same_for_5_unit_results_as_for_500(signed_in, buildable, params):
    few = build_page_with_unit_results(5, signed_in, buildable, params)
    many = build_page_with_unit_results(500, signed_in, buildable, params)
    assert few == many
    assert many <= 15  # 13, and two for the history marks (builds.test_history)
