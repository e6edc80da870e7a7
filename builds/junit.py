"""Reading JUnit XML test reports into unit results (docs/harbormaster.md §2.3's unit messages).

Safe by construction: the document is size-limited before parsing, and parsed with
``defusedxml`` with DTDs, entity declarations and external references all refused, so no
entity expansion ("billion laughs") or external fetch can happen.

Accepted shapes: a ``<testsuites>`` root (pytest, Jenkins, go-junit-report, gotestsum), a
``<testsuite>`` root (Maven Surefire, Ant), and suites nested in suites. Each ``<testcase>``
becomes one unit result:

| JUnit | unit result |
|---|---|
| ``name`` | ``name`` |
| ``classname`` (else the enclosing suite's ``name``) | ``namespace`` |
| ``time`` (seconds) | ``duration`` |
| ``file`` | ``path`` |
| ``<failure>`` | ``result: fail``, message and text in ``details`` |
| ``<error>`` | ``result: broken`` (an unexpected error, as Arcanist's xUnit parser reads it) |
| ``<skipped>`` | ``result: skip`` |
| none of these (Surefire's ``<flakyFailure>`` too: it passed on a rerun) | ``result: pass`` |
"""

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

MAX_DETAILS_CHARS = 64 * 1024
MAX_NAME_CHARS = 4000
MAX_SUITE_DEPTH = 100  # <testsuite> levels, the root included
OUTCOMES = (("error", "broken"), ("failure", "fail"), ("skipped", "skip"))
FAILING_RESULTS = frozenset({"fail", "broken"})


class JUnitError(ValueError):
    """The document is not a JUnit report Harbor can read (the message says why)."""


@dataclass
class Report:
    """The unit results of a report, in document order, and how many of each result."""

    units: list[dict] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"total": len(self.units), "pass": 0, "fail": 0, "broken": 0, "skip": 0}
        for unit in self.units:
            counts[unit["result"]] += 1
        return counts

    @property
    def failed(self) -> bool:
        """True if any test failed or errored."""
        return any(unit["result"] in FAILING_RESULTS for unit in self.units)

    def verdict(self) -> str:
        """``fail`` if any test failed or errored, else ``pass``."""
        return "fail" if self.failed else "pass"


def parse(document: bytes, max_bytes: int, max_tests: int = 100_000) -> Report:
    """Parse a JUnit XML ``document`` of at most ``max_bytes`` bytes and ``max_tests`` test
    cases. Raises JUnitError when it is too large, not well-formed, uses a DTD or entities,
    or has no ``testsuites``/``testsuite`` root."""
    if len(document) > max_bytes:
        raise JUnitError(f"The JUnit report is larger than {max_bytes} bytes.")
    try:
        root = fromstring(document, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise JUnitError(
            "The JUnit report declares a DTD, entities or external references, which are "
            f"refused ({type(error).__name__})."
        ) from error
    except ParseError as error:
        raise JUnitError(f"The JUnit report is not well-formed XML: {error}.") from error
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise JUnitError(
            f"The JUnit report's root element is <{_local(root.tag)}>; expected <testsuites> "
            "or <testsuite>."
        )
    report = Report()
    for case, suite_name in _cases(root, ""):
        if len(report.units) >= max_tests:
            raise JUnitError(f"The JUnit report has more than {max_tests} test cases.")
        report.units.append(unit_result(case, suite_name))
    return report


def _cases(root: Element, suite_name: str):
    """Yield ``(testcase, enclosing suite name)`` in document order, through nested suites
    (walked without recursion); raises JUnitError past ``MAX_SUITE_DEPTH`` levels."""
    pending = [(iter(root), suite_name)]
    while pending:
        children, name = pending[-1]
        child = next(children, None)
        if child is None:
            pending.pop()
            continue
        tag = _local(child.tag)
        if tag == "testcase":
            yield child, name
        elif tag in ("testsuite", "testsuites"):
            if len(pending) >= MAX_SUITE_DEPTH:
                raise JUnitError(
                    f"The JUnit report's suites are nested more than {MAX_SUITE_DEPTH} levels deep."
                )
            pending.append((iter(child), child.get("name") or name))


def unit_result(case: Element, suite_name: str) -> dict:
    """One ``<testcase>`` as a unit result dict (keys as the REST API's ``unit`` items)."""
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
        outcome = _child(case, tag)
        if outcome is not None:
            unit["result"] = result
            details = _details(outcome)
            if details:
                unit["details"] = details
            break
    return unit


def _child(case: Element, tag: str) -> Element | None:
    for child in case:
        if _local(child.tag) == tag:
            return child
    return None


def _details(outcome: Element) -> str:
    """The failure's text, led by its type and message unless the text already says them."""
    message = (outcome.get("message") or "").strip()
    text = (outcome.text or "").strip()
    if text and (not message or message in text):
        return text[:MAX_DETAILS_CHARS]
    kind = outcome.get("type") or ""
    head = f"{kind}: {message}" if kind and message else message or kind
    return "\n\n".join(part for part in (head, text) if part)[:MAX_DETAILS_CHARS]


def _seconds(value: str | None) -> float | None:
    """A ``time`` attribute in seconds (Jenkins may write ``1,234.5``); None if unreadable."""
    if not value:
        return None
    try:
        seconds = float(value.replace(",", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds != float("inf") else None


def _local(tag: str) -> str:
    """A tag without its namespace (``{urn:x}testsuite`` → ``testsuite``)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
