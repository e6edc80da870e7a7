"""Reading JUnit XML reports into Harbor unit results, with the standard library only.

The mapping is Harbor's (its server reads reports the same way; a test of the Harbor
repository compares the two on every sample report):

| JUnit | unit result |
|---|---|
| ``name`` | ``name`` |
| ``classname`` (else the enclosing suite's ``name``) | ``namespace`` |
| ``time`` (seconds) | ``duration`` |
| ``file`` | ``path`` |
| ``<failure>`` | ``result: fail``, message and text in ``details`` |
| ``<error>`` | ``result: broken`` |
| ``<skipped>`` | ``result: skip`` |
| none of these (Surefire's ``<flakyFailure>`` too: it passed on a rerun) | ``result: pass`` |

Roots ``<testsuites>`` (pytest, Jenkins, go-junit-report, gotestsum) and ``<testsuite>``
(Maven Surefire, Ant) are read, and suites nested in suites. The reports are the CI job's
own files, so the standard library's parser (which never fetches external entities) is
enough here.
"""

import glob
import math
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator

MAX_DETAILS_CHARS = 64 * 1024
MAX_NAME_CHARS = 4000
OUTCOMES = (("error", "broken"), ("failure", "fail"), ("skipped", "skip"))
FAILING_RESULTS = frozenset({"fail", "broken"})


class ReportError(ValueError):
    """A report cannot be read (the message names the file and why)."""


def find_reports(patterns: list[str]) -> tuple[list[str], list[str]]:
    """The files matching the glob ``patterns`` (``**`` included), sorted and without
    repeats, and the patterns that matched no file."""
    files, unmatched = [], []
    for pattern in patterns:
        found = sorted(glob.glob(pattern, recursive=True))
        if not found:
            unmatched.append(pattern)
        files += [name for name in found if name not in files]
    return files, unmatched


def read_reports(paths: list[str]) -> list[dict]:
    """The unit results of every report at ``paths``, in order; raises ReportError."""
    units: list[dict] = []
    for path in paths:
        units += read_report(path)
    return units


def read_report(path: str) -> list[dict]:
    """The unit results of the report at ``path`` (dicts shaped as Harbor's ``unit`` items);
    raises ReportError when it cannot be read or is not a JUnit report."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        raise ReportError(f"{path}: cannot read the JUnit report: {error}") from error
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise ReportError(
            f"{path}: the root element is <{_local(root.tag)}>; expected <testsuites> or "
            "<testsuite>"
        )
    return [unit_result(case, suite) for case, suite in _cases(root)]


def counts(units: list[dict]) -> dict[str, int]:
    """How many unit results there are of each result, and in all (``total``)."""
    tally = {"total": len(units), "pass": 0, "fail": 0, "broken": 0, "skip": 0}
    for unit in units:
        tally[unit["result"]] = tally.get(unit["result"], 0) + 1
    return tally


def verdict(units: list[dict]) -> str:
    """``fail`` if any test failed or errored, else ``pass``."""
    return "fail" if any(u["result"] in FAILING_RESULTS for u in units) else "pass"


def _cases(root: ElementTree.Element) -> Iterator[tuple[ElementTree.Element, str]]:
    """``(testcase, enclosing suite's name)`` in document order, walked without recursion."""
    pending = [(iter(root), "")]
    while pending:
        children, name = pending[-1]
        child = next(children, None)
        if child is None:
            pending.pop()
        elif _local(child.tag) == "testcase":
            yield child, name
        elif _local(child.tag) in ("testsuite", "testsuites"):
            pending.append((iter(child), child.get("name") or name))


def unit_result(case: ElementTree.Element, suite_name: str) -> dict:
    """One ``<testcase>`` as a unit result."""
    unit = {
        "name": (case.get("name") or "(unnamed test)")[:MAX_NAME_CHARS],
        "namespace": (case.get("classname") or suite_name)[:MAX_NAME_CHARS],
        "result": "pass",
    }
    duration = _seconds(case.get("time"))
    if duration is not None:
        unit["duration"] = duration
    if case.get("file"):
        unit["path"] = case.get("file")
    for tag, result in OUTCOMES:
        outcome = next((c for c in case if _local(c.tag) == tag), None)
        if outcome is not None:
            unit["result"] = result
            details = _details(outcome)
            if details:
                unit["details"] = details
            break
    return unit


def _details(outcome: ElementTree.Element) -> str:
    """The failure's text, led by its type and message unless the text already says them."""
    message = (outcome.get("message") or "").strip()
    text = (outcome.text or "").strip()
    if text and (not message or message in text):
        return text[:MAX_DETAILS_CHARS]
    kind = outcome.get("type") or ""
    head = f"{kind}: {message}" if kind and message else message or kind
    return "\n\n".join(part for part in (head, text) if part)[:MAX_DETAILS_CHARS]


def _seconds(value: str | None) -> float | None:
    """A ``time`` attribute in seconds (``1,234.5`` as some tools write it), or None."""
    if not value:
        return None
    try:
        seconds = float(value.replace(",", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _local(tag: object) -> str:
    """A tag without its namespace (``{urn:x}testsuite`` → ``testsuite``)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
