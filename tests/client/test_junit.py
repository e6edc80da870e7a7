"""The client reads JUnit reports from pytest, Maven Surefire and go-junit-report into unit
results, exactly as Harbor's server reads them."""

import pytest

from builds import junit as server_junit
from harbor_report import junit
from tests.junit.conftest import SAMPLES, run_pytest_on_sample_project


@pytest.fixture(scope="module")
def pytest_report(tmp_path_factory):
    return run_pytest_on_sample_project(tmp_path_factory.mktemp("sample_project"))


def by_name(units: list[dict]) -> dict[str, dict]:
    return {unit["name"]: unit for unit in units}


def test_it_reads_a_pytest_report(pytest_report):
    units = by_name(junit.read_report(str(pytest_report)))
    assert {name: unit["result"] for name, unit in units.items()} == {
        "test_adds": "pass",
        "test_negative": "pass",
        "test_wrong_on_purpose": "fail",
        "test_needs_a_broken_fixture": "broken",
        "test_skipped": "skip",
    }
    assert units["test_negative"]["namespace"] == "test_calc.TestEdges"
    assert "one and one" in units["test_wrong_on_purpose"]["details"]
    assert "fixture exploded" in units["test_needs_a_broken_fixture"]["details"]
    assert all(unit["duration"] >= 0 for unit in units.values())


def test_it_reads_a_surefire_report_with_a_flaky_test_as_passed():
    units = junit.read_report(str(SAMPLES / "surefire.xml"))
    assert {u["name"]: u["result"] for u in units} == {
        "shouldAnswerWithTrue": "pass",
        "retriesTheFlakyCall": "pass",
        "parsesTheConfig": "fail",
        "talksToTheDatabase": "skip",
    }
    failed = units[2]
    assert failed["namespace"] == "com.example.AppTest"
    assert failed["details"].startswith("java.lang.AssertionError: expected:<8080> but was:<80>")
    assert failed["duration"] == pytest.approx(0.011)
    assert junit.verdict(units) == "fail"


def test_it_reads_a_go_junit_report_with_packages_as_namespaces():
    units = junit.read_report(str(SAMPLES / "go-junit-report.xml"))
    assert [(u["namespace"], u["name"], u["result"]) for u in units] == [
        ("example.com/shop/cart", "TestAdd", "pass"),
        ("example.com/shop/cart", "TestTotal/empty_cart", "pass"),
        ("example.com/shop/cart", "TestTotal/rounding", "fail"),
        ("example.com/shop/money", "TestParse", "pass"),
    ]
    assert "Total() = 41.99, want 42.00" in units[2]["details"]
    assert junit.counts(units) == {"total": 4, "pass": 3, "fail": 1, "broken": 0, "skip": 0}


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.xml")))
def test_it_reads_every_sample_as_harbors_server_does(name):
    document = (SAMPLES / name).read_bytes()
    assert junit.read_report(str(SAMPLES / name)) == server_junit.parse(document, 10**7).units


def test_globs_find_reports_in_subdirectories_once_each(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for path in (tmp_path / "a" / "one.xml", tmp_path / "a" / "b" / "two.xml"):
        path.write_text("<testsuite/>")
    found, unmatched = junit.find_reports(
        [f"{tmp_path}/**/*.xml", f"{tmp_path}/a/one.xml", f"{tmp_path}/none-*.xml"]
    )
    assert [p.removeprefix(str(tmp_path)) for p in found] == ["/a/b/two.xml", "/a/one.xml"]
    assert unmatched == [f"{tmp_path}/none-*.xml"]


@pytest.mark.parametrize(
    ("text", "says"),
    [("<html/>", "expected <testsuites>"), ("<testsuite>", "cannot read"), ("", "cannot read")],
)
def test_it_refuses_what_is_not_a_junit_report_naming_the_file(tmp_path, text, says):
    path = tmp_path / "report.xml"
    path.write_text(text)
    with pytest.raises(junit.ReportError, match=says) as refused:
        junit.read_report(str(path))
    assert str(path) in str(refused.value)
