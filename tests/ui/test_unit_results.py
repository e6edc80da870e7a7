"""Unit results on the build page: counts by result at the top, failures first with their
details, the rest a page at a time with search and a result filter, and long text capped
with the full text one click away."""

import re

import pytest
from django.urls import reverse

from builds.models import UnitResult
from tests.ui.conftest import make_build, make_target, plan_of

pytestmark = pytest.mark.django_db

ROW = '<tr class="unit-result'


def units(target, count: int, result: str = "pass", prefix: str = "test_", **fields) -> None:
    UnitResult.objects.bulk_create(
        UnitResult(target=target, name=f"{prefix}{i:04}", result=result, **fields)
        for i in range(count)
    )


@pytest.fixture
def target(buildable):
    return make_target(make_build(plan_of(1), buildable), "step-0")


def page(client, target, **params) -> str:
    response = client.get(reverse("build-detail", args=[target.build_id]), params)
    assert response.status_code == 200
    return response.content.decode()


def section(html: str) -> str:
    """The build page's unit results section."""
    start = html.index('id="unit-results"')
    return html[start : html.index("</section>", start)]


def counts(html: str) -> dict[str, int]:
    found = re.findall(r'data-result="(\w+)"[^>]*>.*?<span class="n">([\d,]+)</span>', html, re.S)
    return {result: int(n.replace(",", "")) for result, n in found}


def test_the_unit_results_start_with_their_counts_by_result(signed_in, target):
    units(target, 3, "pass")
    units(target, 2, "fail", prefix="test_bad_")
    units(target, 1, "skip", prefix="test_skipped_")
    html = section(page(signed_in, target))
    assert counts(html) == {"fail": 2, "pass": 3, "skip": 1}
    assert html.index('data-result="fail"') < html.index(ROW)


def test_failures_come_first_with_their_details(signed_in, target):
    units(target, 150, "pass", prefix="a_test_")
    UnitResult.objects.create(
        target=target, name="z_test_broken", result="broken", details="Traceback: boom"
    )
    html = section(page(signed_in, target))
    assert html.index("z_test_broken") < html.index("a_test_0000")
    assert "Traceback: boom" in html


def test_the_results_come_a_hundred_to_a_page(signed_in, target):
    units(target, 250)
    first = section(page(signed_in, target))
    assert first.count(ROW) == 100
    assert "test_0000" in first and "test_0100" not in first
    assert "unit_page=2" in first
    last = section(page(signed_in, target, unit_page=3))
    assert last.count(ROW) == 50
    assert "test_0249" in last and "test_0199" not in last


def test_a_search_finds_results_by_name_or_namespace(signed_in, target):
    units(target, 20)
    UnitResult.objects.create(target=target, name="test_login", namespace="auth", result="pass")
    UnitResult.objects.create(target=target, name="test_x", namespace="billing", result="pass")
    by_name = section(page(signed_in, target, unit_q="LOGIN"))
    assert by_name.count(ROW) == 1 and "test_login" in by_name
    by_namespace = section(page(signed_in, target, unit_q="bill"))
    assert by_namespace.count(ROW) == 1 and "test_x" in by_namespace


def test_a_filter_shows_only_the_results_of_one_kind(signed_in, target):
    units(target, 30, "pass")
    units(target, 4, "skip", prefix="skipped_")
    html = section(page(signed_in, target, unit_result="skip"))
    assert html.count(ROW) == 4
    assert "skipped_0003" in html and "test_0000" not in html
    assert counts(html) == {"pass": 30, "skip": 4}  # the counts stay those of the run


def test_an_unknown_result_filter_or_page_shows_the_first_page_of_all(signed_in, target):
    units(target, 5)
    html = section(page(signed_in, target, unit_result="nonsense", unit_page="x"))
    assert html.count(ROW) == 5


def test_a_long_name_and_details_are_capped_with_a_link_to_the_full_text(signed_in, target):
    name = "test_" + "n" * 10_000 + "_END"
    details = "d" * 5_000 + "DETAILS_END"
    unit = UnitResult.objects.create(target=target, name=name, result="fail", details=details)
    html = page(signed_in, target)
    assert name[:200] in html and name[:201] not in html and "_END" not in html
    assert details[:2000] in html and details[:2001] not in html
    url = reverse("unit-result", args=[unit.id])
    assert f'href="{url}"' in html
    full = signed_in.get(url)
    assert full.status_code == 200
    assert name in full.content.decode() and details in full.content.decode()


def test_the_full_text_of_a_unit_result_needs_a_signed_in_user(client, target):
    unit = UnitResult.objects.create(target=target, name="test_a", result="pass")
    response = client.get(reverse("unit-result", args=[unit.id]))
    assert response.status_code == 302


def test_each_target_shows_its_own_counts(signed_in, buildable):
    build = make_build(plan_of(2), buildable)
    units(make_target(build, "step-0"), 3, "fail")
    units(make_target(build, "step-1"), 7, "pass")
    html = page(signed_in, build.targets.get(step_key="step-0"))
    first = html[html.index('id="step-step-0"') : html.index('id="step-step-1"')]
    second = html[html.index('id="step-step-1"') :]
    assert counts(first) == {"fail": 3} and counts(second[: second.index("</section>")]) == {
        "pass": 7
    }
