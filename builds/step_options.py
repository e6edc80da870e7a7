"""What each build step type accepts, declared as data, and the check of a step's options.

Each step type (``workers.steps.STEP_TYPES``) has a ``StepDeclaration`` here: its options
(name, kind of value, required or not, default, any further rule) and whether it may wait
for a message. Plan import (``builds.plans``) checks every step against it; the step
classes read their defaults from it (``StepContext.option``). It lives in ``builds/``
because plan import needs it and ``workers/`` imports ``builds/``, never the reverse.

Besides its type's options a step may carry the fields of ``STEP_FIELDS`` (columns of
``BuildStep``) and the lifecycle options of ``COMMON_OPTIONS``, whose rules
``builds.plans`` checks. Anything else is refused, with the nearest known name suggested.
Every ``${name}`` in an option's text (inside mappings and lists too) must name a known
variable (``builds.variables.unknown_variable_problems``).
"""

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings

from builds.approvals import field_definition_problems
from builds.variables import VARIABLE, unknown_variable_problems

STEP_FIELDS = frozenset({"key", "name", "type", "depends_on", "wait_for_message", "description"})
COMMON_OPTIONS = frozenset(
    {"wait_timeout", "on_timeout", "on_abort", "artifacts", "retry", "stuck_after", "concurrency"}
)
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


@dataclass(frozen=True)
class Kind:
    """A kind of option value: ``label`` completes "must be …", ``accepts(value)`` says
    whether a value is of this kind."""

    label: str
    accepts: Callable[[Any], bool]


@dataclass(frozen=True)
class Option:
    """One option of a step type. ``check(value)`` (for a value of the right kind) returns
    why it is refused, or None. ``variables`` False means ``${…}`` is not substituted into
    it, so ``check`` refuses it instead of the variable check looking the names up."""

    name: str
    kind: Kind
    required: bool = False
    default: Any = None
    check: Callable[[Any], str | None] | None = None
    variables: bool = True


@dataclass(frozen=True)
class StepDeclaration:
    """A step type's options; ``refusal()``, if set, says why the type cannot be used here
    at all (None if it can)."""

    name: str
    options: tuple[Option, ...] = ()
    supports_wait_for_message: bool = False
    refusal: Callable[[], str | None] | None = None

    def option(self, name: str) -> Option:
        """The declared option ``name``; KeyError if the type has none of that name."""
        for option in self.options:
            if option.name == name:
                return option
        raise KeyError(name)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def seconds_value(value: Any) -> float:
    """``value`` (a number or text such as "2.5") as seconds; NaN if it is neither."""
    try:
        return float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        return math.nan


def seconds(minimum: float) -> Kind:
    """A finite number of at least ``minimum`` seconds, as a number or as text; text holding
    a ``${…}`` variable passes, as its value is only known when the step runs."""

    def accepts(value: Any) -> bool:
        if isinstance(value, str) and VARIABLE.search(value):
            return True
        number = seconds_value(value)
        return not isinstance(value, bool) and math.isfinite(number) and number >= minimum

    return Kind(f"a number of seconds, at least {minimum:g}", accepts)


TEXT = Kind("text", lambda value: isinstance(value, str))
FLAG = Kind("true or false", lambda value: isinstance(value, bool))
MAPPING = Kind("a mapping", lambda value: isinstance(value, dict))
BODY = Kind("text, a mapping or a list", lambda value: isinstance(value, str | dict | list))
POSITIVE_NUMBER = Kind("a number above 0", lambda value: _number(value) and value > 0)
COUNT = Kind(
    "a whole number of 0 or more",
    lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 0,
)
GLOBS = Kind(
    "a glob or a list of globs",
    lambda value: (
        isinstance(value, str)
        or (isinstance(value, list) and all(isinstance(item, str) for item in value))
    ),
)


def _not_blank(value: str) -> str | None:
    return "must not be empty" if not value.strip() else None


def _http_method(value: str) -> str | None:
    if value.upper() not in HTTP_METHODS:
        return f"must be one of {', '.join(HTTP_METHODS)}, not {value!r}"
    return None


def _command_text(value: str) -> str | None:
    if VARIABLE.search(value):
        return (
            "must not hold ${…}: variables are not substituted into a command; use the "
            "environment, e.g. $HARBOR_BUILD_ID for ${build.id}"
        )
    return _not_blank(value)


def _inside(path: str) -> bool:
    return not PurePosixPath(path).is_absolute() and ".." not in PurePosixPath(path).parts


def _directory(value: str) -> str | None:
    return None if _inside(value) else "must be a relative path inside the working directory"


def _globs(value: str | list[str]) -> str | None:
    patterns = [value] if isinstance(value, str) else value
    if not all(patterns) or not all(_inside(pattern) for pattern in patterns):
        return "must hold globs that stay inside the working directory"
    return None


def _commands_refusal() -> str | None:
    if not settings.HARBOR_ALLOW_COMMAND_STEPS:
        return "command steps are switched off here (HARBOR_ALLOW_COMMAND_STEPS)"
    return None


HTTP = StepDeclaration(
    "http",
    (
        Option("uri", TEXT, required=True, check=_not_blank),
        Option("method", TEXT, default="POST", check=_http_method),
        Option("headers", MAPPING, default={}),
        Option("body", BODY),
        Option("credential", TEXT),
        Option("timeout", POSITIVE_NUMBER),  # default: the HARBOR_HTTP_TIMEOUT setting
        Option("max_redirects", COUNT, default=5),
    ),
    supports_wait_for_message=True,
)
COMMAND = StepDeclaration(
    "command",
    (
        Option("command", TEXT, required=True, check=_command_text, variables=False),
        Option("clone", FLAG, default=False),
        Option("directory", TEXT, default=".", check=_directory),
        Option("env", MAPPING, default={}),
        Option("timeout", POSITIVE_NUMBER),  # default: the HARBOR_COMMAND_TIMEOUT setting
        Option("junit", GLOBS, default=[], check=_globs),
    ),
    refusal=_commands_refusal,
)
SLEEP = StepDeclaration(
    "sleep", (Option("seconds", seconds(0), default=0),), supports_wait_for_message=True
)
FAIL = StepDeclaration("fail", (Option("message", TEXT, default="This step always fails."),))
WAIT_FOR_PREVIOUS_BUILDS = StepDeclaration(
    "wait-for-previous-builds", (Option("poll_seconds", seconds(1), default=5),)
)
ABORT_OLDER_BUILDS = StepDeclaration("abort-older-builds")
FIELD_LIST = Kind("a list of fields", lambda value: isinstance(value, list))
# Always waits: plan import sets wait_for_message (builds/plan_steps.py).
APPROVAL = StepDeclaration(
    "approval",
    (
        Option("prompt", TEXT, required=True, check=_not_blank),
        Option("fields", FIELD_LIST, default=[], check=field_definition_problems),
        Option("approvers", TEXT, check=_not_blank, variables=False),
    ),
    supports_wait_for_message=True,
)

DECLARATIONS: dict[str, StepDeclaration] = {
    declaration.name: declaration
    for declaration in (
        HTTP,
        COMMAND,
        SLEEP,
        FAIL,
        WAIT_FOR_PREVIOUS_BUILDS,
        ABORT_OLDER_BUILDS,
        APPROVAL,
    )
}


def option_problems(declaration: StepDeclaration, config: dict) -> list[str]:
    """Every problem of a step's ``config`` (its keys other than ``STEP_FIELDS``) against
    its type's ``declaration``, each naming the option: the type refused here, an unknown
    option (with the nearest known name), a missing required one, a value of the wrong kind
    or refused by the option's rule, an unknown variable. Empty if there is none."""
    refusal = declaration.refusal() if declaration.refusal else None
    problems = [refusal] if refusal else []
    declared = {option.name: option for option in declaration.options}
    for name, value in config.items():
        if name in declared:
            problems += _value_problems(declared[name], value)
        elif name in COMMON_OPTIONS:
            problems += [f"option {name!r}: {p}" for p in unknown_variable_problems(value)]
        else:
            problems.append(_unknown_option(name, declaration))
    problems += [
        f"option {option.name!r} is required"
        for option in declaration.options
        if option.required and option.name not in config
    ]
    return problems


def _value_problems(option: Option, value: Any) -> list[str]:
    if not option.kind.accepts(value):
        return [f"option {option.name!r} must be {option.kind.label}, not {value!r}"]
    refused = option.check(value) if option.check else None
    if refused:
        return [f"option {option.name!r} {refused}"]
    if not option.variables:
        return []
    return [f"option {option.name!r}: {p}" for p in unknown_variable_problems(value)]


def _unknown_option(name: Any, declaration: StepDeclaration) -> str:
    known = [option.name for option in declaration.options]
    known += sorted(COMMON_OPTIONS | STEP_FIELDS)
    nearest = difflib.get_close_matches(str(name), known, n=1)
    hint = f" (did you mean {nearest[0]!r}?)" if nearest else ""
    return f"unknown option {name!r}{hint}"
