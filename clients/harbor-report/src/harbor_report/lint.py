"""Reading lint results into Harbor lint messages: a JSON list of Harbor's own lint items,
or a checkstyle XML report (what ESLint, Checkstyle, ruff, golangci-lint, ktlint write with
their checkstyle format).

JSON: ``[{"name", "code", "severity", "path", "line", "char", "description"}, …]`` (or
``{"lint": [...]}``), sent as given. Checkstyle: each ``<file name>`` / ``<error line column
severity message source>`` becomes ``{"name", "code", "severity", "path", "line", "char",
"description"}``: ``code`` is the ``source`` (the rule), ``name`` its last dotted part,
``severity`` error/warning kept, info → advice, ignore → disabled.
"""

import json
import xml.etree.ElementTree as ElementTree

from harbor_report.junit import ReportError

SEVERITIES = {"error": "error", "warning": "warning", "info": "advice", "ignore": "disabled"}
MAX_CODE_CHARS = 128
MAX_NAME_CHARS = 255


def read_lint(path: str) -> list[dict]:
    """The lint messages in the file at ``path`` (JSON or checkstyle XML, told apart by the
    first character); raises ReportError when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as lint_file:
            text = lint_file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot read the lint file: {error}") from error
    if text.lstrip()[:1] in ("[", "{"):
        return _read_json(path, text)
    return _read_checkstyle(path, text)


def _read_json(path: str, text: str) -> list[dict]:
    try:
        items = json.loads(text)
    except ValueError as error:
        raise ReportError(f"{path}: the lint file is not valid JSON: {error}") from error
    if isinstance(items, dict):
        items = items.get("lint")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ReportError(f"{path}: expected a JSON list of lint objects")
    return items


def _read_checkstyle(path: str, text: str) -> list[dict]:
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise ReportError(f"{path}: the lint file is neither JSON nor XML: {error}") from error
    if root.tag != "checkstyle":
        raise ReportError(f"{path}: the root element is <{root.tag}>; expected <checkstyle>")
    return [
        _lint_message(file.get("name") or "", error)
        for file in root.iter("file")
        for error in file.iter("error")
    ]


def _lint_message(file_name: str, error: ElementTree.Element) -> dict:
    source = error.get("source") or "checkstyle"
    message = {
        "name": source.rsplit(".", 1)[-1][:MAX_NAME_CHARS],
        "code": source[:MAX_CODE_CHARS],
        "severity": SEVERITIES.get(error.get("severity") or "error", "error"),
        "path": file_name,
        "description": error.get("message") or "",
    }
    for attribute, key in (("line", "line"), ("column", "char")):
        value = error.get(attribute) or ""
        if value.isdigit():
            message[key] = int(value)
    return message
