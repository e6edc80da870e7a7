"""Reading JUnit XML: pytest's, Jenkins', Surefire's and Go tools' reports, and hostile or
broken documents refused."""

import pytest

from builds import junit
from tests.junit.conftest import sample

MAX = 1024 * 1024


def by_name(report: junit.Report) -> dict[str, dict]:
    return {unit["name"]: unit for unit in report.units}


def test_a_report_written_by_pytest(report_by_pytest):
    report = junit.parse(report_by_pytest.read_bytes(), MAX)
    units = by_name(report)
    assert report.counts == {"total": 5, "pass": 2, "fail": 1, "broken": 1, "skip": 1}
    assert units["test_negative"]["namespace"] == "test_calc.TestEdges"
    assert units["test_adds"]["namespace"] == "test_calc"
    assert units["test_adds"]["path"] == "test_calc.py"
    assert units["test_wrong_on_purpose"]["result"] == "fail"
    assert "one and one" in units["test_wrong_on_purpose"]["details"]
    assert units["test_needs_a_broken_fixture"]["result"] == "broken"
    assert "fixture exploded" in units["test_needs_a_broken_fixture"]["details"]
    assert units["test_skipped"]["result"] == "skip"
    assert "not today" in units["test_skipped"]["details"]
    assert all(unit["duration"] >= 0 for unit in report.units)
    assert report.verdict() == "fail"


def test_a_passing_report_by_pytest_is_a_pass(passing_report_by_pytest):
    report = junit.parse(passing_report_by_pytest.read_bytes(), MAX)
    assert report.counts["total"] == 2
    assert report.verdict() == "pass"


def test_jenkins_report_with_errors_and_thousands_separators():
    report = junit.parse(sample("jenkins.xml"), MAX)
    units = by_name(report)
    assert report.counts == {"total": 4, "pass": 2, "fail": 1, "broken": 1, "skip": 0}
    total = units["computesTheTotal"]
    assert total["namespace"] == "com.example.checkout.CartTest"
    assert total["duration"] == pytest.approx(1204.48)
    assert total["details"].startswith("org.opentest4j.AssertionFailedError: expected: <42.00>")
    assert units["chargesTheCard"]["details"].startswith("java.net.ConnectException")


def test_surefire_report_with_a_flaky_pass_and_a_skip():
    report = junit.parse(sample("surefire.xml"), MAX)
    units = by_name(report)
    assert units["retriesTheFlakyCall"]["result"] == "pass"
    assert units["parsesTheConfig"]["result"] == "fail"
    assert "expected:<8080> but was:<80>" in units["parsesTheConfig"]["details"]
    assert units["talksToTheDatabase"] == {
        "name": "talksToTheDatabase",
        "namespace": "com.example.AppTest",
        "result": "skip",
        "duration": 0.0,
        "details": "Database not available",
    }


def test_go_junit_report_uses_packages_as_namespaces():
    report = junit.parse(sample("go-junit-report.xml"), MAX)
    units = by_name(report)
    assert units["TestTotal/rounding"]["namespace"] == "example.com/shop/cart"
    assert "want 42.00" in units["TestTotal/rounding"]["details"]
    assert units["TestParse"]["namespace"] == "example.com/shop/money"
    assert report.verdict() == "fail"


def test_gotestsum_report_with_a_skip_passes():
    report = junit.parse(sample("gotestsum.xml"), MAX)
    assert report.counts == {"total": 3, "pass": 2, "fail": 0, "broken": 0, "skip": 1}
    assert by_name(report)["TestCheckout"]["duration"] == 0.5
    assert report.verdict() == "pass"


def test_a_case_without_classname_takes_its_suites_name_through_nesting():
    document = b"""<testsuites><testsuite name="outer"><testsuite name="inner">
        <testcase name="t" time="x"/></testsuite></testsuite></testsuites>"""
    (unit,) = junit.parse(document, MAX).units
    assert unit == {"name": "t", "namespace": "inner", "result": "pass"}


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<testsuite><testcase name="&lol2;"/></testsuite>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE t [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<testsuite><testcase name="&secret;"/></testsuite>"""
DTD_ONLY = b"""<?xml version="1.0"?><!DOCTYPE testsuite SYSTEM "http://example.com/x.dtd">
<testsuite/>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY, DTD_ONLY])
def test_dtds_and_entities_are_refused_without_expansion(document):
    with pytest.raises(junit.JUnitError, match="DTD, entities or external references"):
        junit.parse(document, MAX)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"<testsuite><testcase", "not well-formed"),
        (b"<html/>", "root element is <html>"),
        (b"<testsuite>" + b"<testcase name='t'/>" * 3 + b"</testsuite>", "more than 2 test cases"),
    ],
)
def test_broken_or_oversized_documents_are_refused(document, problem):
    with pytest.raises(junit.JUnitError, match=problem):
        junit.parse(document, MAX, max_tests=2)


def test_a_document_over_the_size_limit_is_refused_before_parsing():
    with pytest.raises(junit.JUnitError, match="larger than 10 bytes"):
        junit.parse(b"<testsuite>" + b" " * 10 + b"</testsuite>", 10)


def nested_suites(depth: int) -> bytes:
    opening = "".join(f'<testsuite name="s{level}">' for level in range(depth))
    return (opening + '<testcase name="deep"/>' + "</testsuite>" * depth).encode()


def test_suites_nested_as_deep_as_allowed_are_read_in_document_order():
    document = nested_suites(junit.MAX_SUITE_DEPTH).replace(
        b'<testsuite name="s1">', b'<testsuite name="s1"><testcase name="first"/>', 1
    )
    report = junit.parse(document, MAX)
    assert [unit["name"] for unit in report.units] == ["first", "deep"]
    assert report.units[0]["namespace"] == "s1"
    assert report.units[1]["namespace"] == f"s{junit.MAX_SUITE_DEPTH - 1}"


def test_suites_nested_deeper_than_allowed_are_refused():
    # 5,000 levels used to exhaust Python's recursion limit (a 500 at the endpoint).
    with pytest.raises(junit.JUnitError, match="nested more than"):
        junit.parse(nested_suites(5000), MAX)
