"""Approval steps: a person's decision, received as a message (docs/design.md §6.9).

An ``approval`` step's target waits like any waiting step; a ``pass`` (approve) or ``fail``
(decline) message settles it, with ``fields`` (the values the person entered) checked here
against the step's field definitions. Who may decide is ``builds.permissions.can_decide``'s
rule, beside the others on who may do what. Later steps read the values of a passed
approval as ``${approval.<step key>.<field>}``.

Below the engine and the step options: both use it, it uses neither.
"""

import re
from typing import Any

from builds.models import Build, BuildMessage, BuildTarget

APPROVAL = "approval"
FIELD_TYPES = ("text", "select")
FIELD_NAME = re.compile(r"[a-z0-9_-]+")
FIELD_KEYS = frozenset({"name", "label", "type", "options", "required"})
MAX_VALUE_LENGTH = 2000
VARIABLE_PREFIX = "approval."


class InvalidDecision(ValueError):
    """The fields sent do not fit the approval's field definitions."""


def field_definition_problems(fields: Any) -> str | None:
    """Why ``fields`` (an approval step's ``fields`` option: a list of
    ``{name, label?, type: text|select, options?: [text], required?: bool}``) is refused,
    or None."""
    if not isinstance(fields, list):
        return "must be a list of fields"
    seen: set[str] = set()
    for field in fields:
        if not isinstance(field, dict) or not isinstance(field.get("name"), str):
            return "must list mappings, each with a name"
        problem = _field_problem(field, seen)
        if problem:
            return f"field {field['name']!r}: {problem}"
        seen.add(field["name"])
    return None


def _field_problem(field: dict, seen: set[str]) -> str | None:
    if not FIELD_NAME.fullmatch(field["name"]):
        return "the name must match [a-z0-9_-]+"
    if field["name"] in seen:
        return "appears twice"
    unknown = sorted(map(str, set(field) - FIELD_KEYS))
    if unknown:
        return f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(FIELD_KEYS))})"
    kind = field.get("type", "text")
    if kind not in FIELD_TYPES:
        return f"type must be text or select, not {kind!r}"
    options = field.get("options")
    if kind == "select" and not (
        isinstance(options, list) and options and all(isinstance(o, str) for o in options)
    ):
        return "a select needs options, a list of texts"
    if kind == "text" and options is not None:
        return "only a select has options"
    if not isinstance(field.get("required", False), bool):
        return "required must be true or false"
    return None


def check_decision(config: dict, message_type: str, values: dict | None) -> dict[str, str]:
    """The ``values`` for an approval with step ``config``, checked: each names a field of
    the step, a select's value is one of its options, and (to approve, ``pass``) every
    required field has a non-blank value. Returns them with the blank ones dropped.
    Raises InvalidDecision naming every problem."""
    values = dict(values or {})
    if message_type == BuildMessage.Type.WORK and values:
        raise InvalidDecision("An approval's fields go with pass (approve) or fail (decline).")
    fields = {field["name"]: field for field in config.get("fields", [])}
    problems = [f"unknown field {name!r}" for name in values if name not in fields]
    for name, field in fields.items():
        value = values.get(name)
        problems += _value_problems(name, field, value, message_type)
    if problems:
        raise InvalidDecision("; ".join(problems) + ".")
    return {name: value for name, value in values.items() if value.strip()}


def _value_problems(name: str, field: dict, value: Any, message_type: str) -> list[str]:
    if value is not None and not isinstance(value, str):
        return [f"field {name!r} must be text"]
    if value is not None and len(value) > MAX_VALUE_LENGTH:
        return [f"field {name!r} is longer than {MAX_VALUE_LENGTH} characters"]
    blank = value is None or not value.strip()
    if blank:
        approving = message_type == BuildMessage.Type.PASS
        return [f"field {name!r} is required"] if approving and field.get("required") else []
    options = field.get("options")
    if options is not None and value not in options:
        return [f"field {name!r} must be one of {', '.join(options)}, not {value!r}"]
    return []


def approval_variables(build: Build) -> dict[str, str]:
    """``approval.<step key>.<field>`` for each field of each passed approval of the build's
    current run (its current attempts), from the message that approved it."""
    targets = dict(
        BuildTarget.objects.filter(
            build=build,
            step_type=APPROVAL,
            generation=build.generation,
            superseded_by="",
            status=BuildTarget.Status.PASSED,
        ).values_list("pk", "step_key")
    )
    # The first verdict a target received is the one that decided it (verdicts wait
    # unconsumed until it waits, then the lowest id wins: builds.engine.passes). Read from
    # the messages, not the timeline: the pass that settles it inserts its events last.
    decided: dict[int, dict] = {}
    verdicts = BuildMessage.objects.filter(target_id__in=targets, type__in=BuildMessage.VERDICTS)
    for target_id, fields in verdicts.order_by("id").values_list("target_id", "fields"):
        decided.setdefault(target_id, fields or {})
    return {
        f"{VARIABLE_PREFIX}{targets[target_id]}.{name}": value
        for target_id, fields in decided.items()
        for name, value in fields.items()
    }
