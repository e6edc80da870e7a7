"""JUnit XML files a step names become the target's unit results.

JUnit XML comes from the build, i.e. from code Harbor does not trust, so it is parsed with
``defusedxml`` (no entity expansion, no external entities). The mapping follows what
Harbormaster's ``arc unit`` engines report (spec §2.3): a ``testcase`` is one unit result;
``failure`` → ``fail``, ``error`` → ``broken``, ``skipped`` → ``skip``, otherwise ``pass``;
``classname`` is the namespace and ``time`` the duration in seconds.
"""

from pathlib import Path

from defusedxml import ElementTree
from django.db import transaction

from builds.models import BuildTarget, UnitResult

ENGINE = "junit"
MAX_DETAILS = 64 * 1024  # characters of failure text kept per unit result
OUTCOMES = (("failure", "fail"), ("error", "broken"), ("skipped", "skip"))


class JUnitError(ValueError):
    """A file that is not JUnit XML; the message names it."""


def find_reports(root: Path, patterns: list[str]) -> list[Path]:
    """Files under ``root`` matching the glob ``patterns`` (relative to ``root``), sorted;
    anything a pattern reaches outside ``root`` (``..``, symlinks) is ignored."""
    root = root.resolve()
    found: set[Path] = set()
    for pattern in patterns:
        for path in root.glob(pattern):
            resolved = path.resolve()
            if resolved.is_file() and resolved.is_relative_to(root):
                found.add(resolved)
    return sorted(found)


def parse_report(path: Path) -> list[dict]:
    """The unit result dicts (``UnitResult`` fields) of one JUnit XML file.

    Raises ``JUnitError`` if the file is not well-formed XML or has no ``testsuite`` or
    ``testsuites`` root.
    """
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, ValueError) as exc:
        raise JUnitError(f"{path.name} is not valid XML: {exc}") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(f"{path.name} is not JUnit XML (its root is <{root.tag}>)")
    return [_unit(case) for case in root.iter("testcase")]


def _unit(case) -> dict:
    result, details = "pass", ""
    for tag, outcome in OUTCOMES:
        element = case.find(tag)
        if element is not None:
            result = outcome
            details = "\n".join(
                part for part in (element.get("message", ""), element.text or "") if part
            )
            break
    return {
        "name": case.get("name", "")[:10000] or "(unnamed)",
        "namespace": case.get("classname", ""),
        "engine": ENGINE,
        "result": result,
        "duration": _seconds(case.get("time")),
        "path": case.get("file", ""),
        "details": details[:MAX_DETAILS],
    }


def _seconds(value: str | None) -> float | None:
    try:
        return float(value.replace(",", "")) if value else None
    except ValueError:
        return None


def store_results(target: BuildTarget, units: list[dict]) -> int:
    """Replace the target's JUnit unit results with ``units``; return how many.

    Replacing (not adding) keeps a target that a second worker claimed again after a crash
    from reporting its tests twice. Results sent by messages are left alone.
    """
    with transaction.atomic():
        UnitResult.objects.filter(target=target, message__isnull=True, engine=ENGINE).delete()
        UnitResult.objects.bulk_create(UnitResult(target=target, **unit) for unit in units)
    return len(units)
