"""JUnit XML files a step names become the target's unit results.

The files come from the build, i.e. from code Harbor does not trust; they are read with
``builds.junit.parse`` (size-limited, ``defusedxml`` with DTDs and entities refused),
the same reader as the REST API's JUnit upload, so a report means the same either way.
"""

from pathlib import Path

from django.db import transaction

from builds.junit import JUnitError as ReportError
from builds.junit import parse
from builds.models import BuildTarget, UnitResult

ENGINE = "junit"
MAX_REPORT_BYTES = 32 * 1024 * 1024


class JUnitError(ValueError):
    """A file that is not a JUnit report Harbor can read; the message names it."""


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
    """The unit result dicts (``UnitResult`` fields, ``engine`` ``junit``) of one report.

    Raises ``JUnitError`` naming the file if it is too large or not a JUnit report.
    """
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise JUnitError(f"{path.name}: larger than {MAX_REPORT_BYTES} bytes, not read")
    try:
        report = parse(path.read_bytes(), MAX_REPORT_BYTES)
    except ReportError as exc:
        raise JUnitError(f"{path.name}: {exc}") from exc
    return [{**unit, "engine": ENGINE} for unit in report.units]


def store_results(target: BuildTarget, units: list[dict]) -> int:
    """Replace the target's JUnit unit results with ``units``; return how many.

    Replacing (not adding) keeps a target that a second worker claimed again after a crash
    from reporting its tests twice. Results sent by messages are left alone.
    """
    with transaction.atomic():
        UnitResult.objects.filter(target=target, message__isnull=True, engine=ENGINE).delete()
        UnitResult.objects.bulk_create(UnitResult(target=target, **unit) for unit in units)
    return len(units)
