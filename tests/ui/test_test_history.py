"""Unit test history across a plan's builds: a failure is new when the test passed in the
previous build on the same ref, known when it failed there too; a test that both passed and
failed on one commit is flaky; a test's page lists its last results; the plan page ranks
the flakiest and slowest tests; each page costs a fixed number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from builds import test_history
from builds.models import Buildable, UnitResult
from tests.ui.conftest import make_build, make_target, plan_of

pytestmark = pytest.mark.django_db


def run(plan, commit: str, results: dict[str, str], ref: str = "refs/heads/main", durations=None):
    """A passed-or-failed build of ``plan`` on ``commit`` whose target reported ``results``
    (name → result)."""
    buildable, _ = Buildable.objects.get_or_create(
        repository="https://example.com/r.git", commit=commit, defaults={"ref": ref}
    )
    build = make_build(plan, buildable, status="failed")
    target = make_target(build, "step-0", status="failed")
    UnitResult.objects.bulk_create(
        UnitResult(
            target=target,
            name=name,
            namespace="suite",
            result=result,
            duration=(durations or {}).get(name),
        )
        for name, result in results.items()
    )
    return build


def marks_on_page(client, build) -> dict[str, list[str]]:
    html = client.get(reverse("build-detail", args=[build.id])).content.decode()
    found = {}
    for name in ("test_a", "test_b", "test_c"):
        row = html[html.index(f"<td>{name}") :]
        row = row[: row.index("</td>")]
        found[name] = [m for m in ("new", "known", "flaky") if f'class="mark mark-{m}"' in row]
    return found


def test_failures_are_marked_new_or_known_from_the_previous_build_on_the_ref(signed_in):
    plan = plan_of(1)
    run(plan, "c1", {"test_a": "pass", "test_b": "fail", "test_c": "pass"})
    latest = run(plan, "c2", {"test_a": "fail", "test_b": "fail", "test_c": "pass"})
    marks = marks_on_page(signed_in, latest)
    assert marks == {"test_a": ["new"], "test_b": ["known"], "test_c": []}


def test_a_build_on_another_ref_is_not_the_previous_build(signed_in):
    plan = plan_of(1)
    run(plan, "c1", {"test_a": "pass", "test_b": "pass", "test_c": "pass"})
    run(plan, "c2", {"test_a": "fail", "test_b": "pass", "test_c": "pass"}, ref="refs/heads/x")
    # c2's buildable is on another ref, so the one before c3 on main is c1.
    latest = run(plan, "c3", {"test_a": "fail", "test_b": "pass", "test_c": "pass"})
    assert marks_on_page(signed_in, latest)["test_a"] == ["new"]


def test_a_test_that_passed_and_failed_on_one_commit_is_flaky(signed_in):
    plan = plan_of(1)
    run(plan, "c1", {"test_a": "pass", "test_b": "pass", "test_c": "pass"})
    rerun = run(plan, "c1", {"test_a": "fail", "test_b": "pass", "test_c": "fail"})
    assert marks_on_page(signed_in, rerun) == {
        "test_a": ["new", "flaky"],
        "test_b": [],
        "test_c": ["new", "flaky"],
    }


def test_a_tests_page_lists_its_last_results_across_builds(signed_in):
    plan = plan_of(1)
    builds = [
        run(plan, f"c{i}", {"test_a": ("pass", "fail")[i % 2], "test_b": "pass"}) for i in range(4)
    ]
    key = test_history.key_of("suite", "test_a")
    url = reverse("plan-test", args=[plan.id, key])
    with CaptureQueriesContext(connection) as queries:
        html = signed_in.get(url).content.decode()
    assert len(queries.captured_queries) <= 4  # session, user, plan, results
    shown = [html.index(f'href="{b.get_absolute_url()}"') for b in reversed(builds)]
    assert shown == sorted(shown)  # newest build first
    assert "2 of 4 passed" in html
    assert signed_in.get(reverse("plan-test", args=[plan.id, "0" * 32])).status_code == 404


def test_the_unit_list_links_each_test_to_its_history(signed_in):
    plan = plan_of(1)
    build = run(plan, "c1", {"test_a": "pass"})
    html = signed_in.get(reverse("build-detail", args=[build.id])).content.decode()
    key = test_history.key_of("suite", "test_a")
    assert f'href="{reverse("plan-test", args=[plan.id, key])}"' in html


def test_the_python_key_matches_the_database_key():
    plan = plan_of(1)
    run(plan, "c1", {"naïve ✓ " + "x" * 300: "pass"})
    stored = test_history.with_key(UnitResult.objects).values_list("test_key", flat=True).get()
    assert stored == test_history.key_of("suite", "naïve ✓ " + "x" * 300)


def test_the_plan_page_ranks_the_flakiest_and_slowest_tests(signed_in):
    plan = plan_of(1)
    for commit in ("c1", "c2"):
        run(plan, commit, {"test_a": "pass", "test_b": "pass", "test_c": "pass"})
        run(plan, commit, {"test_a": "fail", "test_b": "pass", "test_c": "pass"})
    run(plan, "c3", {"test_b": "pass", "test_c": "fail"})
    run(plan, "c3", {"test_b": "pass", "test_c": "pass"}, durations={"test_b": 3.0, "test_c": 7.5})
    assert [(t["name"], t["commits"]) for t in test_history.flakiest(plan.id)] == [
        ("test_a", 2),
        ("test_c", 1),
    ]
    assert [(t["name"], t["duration"]) for t in test_history.slowest(plan.id)] == [
        ("test_c", 7.5),
        ("test_b", 3.0),
    ]
    with CaptureQueriesContext(connection) as queries:
        html = signed_in.get(reverse("plan-detail", args=[plan.id])).content.decode()
    assert "Flakiest tests" in html and "· 2 commits" in html and "· 7.5 s" in html
    few = len(queries.captured_queries)
    for commit in ("c4", "c5", "c6"):
        run(plan, commit, {"test_a": "pass", "test_d": "fail"})
        run(plan, commit, {"test_a": "fail", "test_d": "pass"})
    with CaptureQueriesContext(connection) as queries:
        signed_in.get(reverse("plan-detail", args=[plan.id]))
    assert len(queries.captured_queries) == few
