"""One step of a plan's YAML, checked whole: every problem found, each naming the step.

The shape of a step is in ``builds/plans.py``'s docstring; its type's options are declared
in ``builds/step_options.py``. Each helper here appends what it finds to ``problems`` and
goes on, so a refused plan lists all its problems at once (``builds.plans.PlanError``).
"""

import json
import re
from typing import Any

from builds.models import BuildStep, BuildTarget
from builds.step_options import DECLARATIONS, STEP_FIELDS, option_problems
from builds.variables import VARIABLE

STEP_KEY_PATTERN = re.compile(r"[a-z0-9._-]+")
ON_TIMEOUT_OUTCOMES = ("fail", "pass")
MAX_WAIT_TIMEOUT = 365 * 24 * 3600  # seconds; NaN and infinity fail the range check too
HOOK_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
MAX_CONCURRENCY_LIMIT = 1000
MAX_RETRIES = 10
RETRY_ON = ("failed", "lost", "timeout")  # BuildTarget.Failure


def parse_step(index: int, raw: Any, problems: list[str]) -> dict | None:
    """The ``BuildStep`` fields (``key``, ``name``, ``step_type``, ``config``,
    ``depends_on``, ``wait_for_message``, ``description``) of the ``index``-th step
    ``raw``; each problem found is appended to ``problems`` as "step 'key': …". Returns
    None if ``raw`` has no usable key (then only that is reported)."""
    if not isinstance(raw, dict):
        problems.append(f"step #{index + 1} must be a mapping with key and type")
        return None
    key = raw.get("key")
    if not isinstance(key, str) or not STEP_KEY_PATTERN.fullmatch(key):
        problems.append(f"step #{index + 1}: key {key!r} must match [a-z0-9._-]+")
        return None
    found: list[str] = []
    length_problem(found, "key", key, BuildStep, "key")
    step = _fields(key, raw, found)
    problems += [f"step {key!r}: {problem}" for problem in found]
    return step


def _fields(key: str, raw: dict, problems: list[str]) -> dict:
    step_type = raw.get("type")
    config = {name: value for name, value in raw.items() if name not in STEP_FIELDS}
    if "artifacts" in config:
        config["artifacts"] = _artifacts(config["artifacts"], problems)
    _check_json(config, problems)
    wait_for_message = _flag(raw, "wait_for_message", problems)
    if step_type == "approval":
        wait_for_message = True  # an approval is a wait for a person's message
    declaration = DECLARATIONS.get(step_type)
    if declaration is None:
        known = ", ".join(sorted(DECLARATIONS))
        problems.append(f"unknown step type {step_type!r} (known: {known})")
    else:
        problems += option_problems(declaration, config)
        if wait_for_message and not declaration.supports_wait_for_message:
            problems.append(f"a {step_type} step cannot wait for a message")
    _check_wait_timeout(config, wait_for_message, problems)
    _check_stuck_after(config.get("stuck_after"), problems)
    _check_concurrency(config.get("concurrency"), problems)
    _check_cancel_hook(config.get("on_abort"), problems)
    if "retry" in config:
        config["retry"] = _retry(config["retry"], problems)
    name = _text(raw, "name", problems) or key
    length_problem(problems, "name", name, BuildStep, "name")
    return {
        "key": key,
        "name": name,
        "step_type": step_type,
        "config": config,
        "depends_on": _depends_on(raw.get("depends_on"), problems),
        "wait_for_message": wait_for_message,
        "description": _text(raw, "description", problems),
    }


def _check_wait_timeout(config: dict, wait_for_message: bool, problems: list[str]) -> None:
    """``wait_timeout`` (seconds > 0) needs ``wait_for_message``; ``on_timeout`` is fail or
    pass and needs ``wait_timeout``."""
    timeout = config.get("wait_timeout")
    if timeout is not None:
        if problem := _seconds_problem("wait_timeout", timeout):
            problems.append(problem)
        if not wait_for_message:
            problems.append("wait_timeout needs wait_for_message: true")
    on_timeout = config.get("on_timeout")
    if on_timeout is not None:
        if on_timeout not in ON_TIMEOUT_OUTCOMES:
            problems.append(f"on_timeout must be fail or pass, not {on_timeout!r}")
        if timeout is None:
            problems.append("on_timeout needs a wait_timeout")


def _check_stuck_after(value: Any, problems: list[str]) -> None:
    """``stuck_after`` (seconds above 0): how long a target may stay building or waiting
    before the pages flag it as stuck."""
    if value is None:
        return
    if problem := _seconds_problem("stuck_after", value):
        problems.append(f"{problem}, not {value!r}")


def _seconds_problem(name: str, value: Any) -> str | None:
    """Why option ``name``'s ``value`` is not a number of seconds above 0 and at most
    ``MAX_WAIT_TIMEOUT`` (a bool is no number; NaN and infinity fail the range), or None."""
    if not isinstance(value, bool) and isinstance(value, int | float):
        if 0 < value <= MAX_WAIT_TIMEOUT:
            return None
    return f"{name} must be a number of seconds above 0 and at most {MAX_WAIT_TIMEOUT} (a year)"


def _check_concurrency(value: Any, problems: list[str]) -> None:
    """``concurrency: {group: "deploy-${buildable.ref}", limit: N}``: a group name (its
    variables are checked with the other options'; a target's own are not known while it
    is queued) and a whole number of slots from 1 to ``MAX_CONCURRENCY_LIMIT``."""
    if value is None:
        return
    if not isinstance(value, dict):
        problems.append("concurrency must be a mapping with group and limit")
        return
    unknown = sorted(map(str, set(value) - {"group", "limit"}))
    if unknown:
        problems.append(f"unknown concurrency field(s): {', '.join(unknown)}")
    group = value.get("group")
    if not isinstance(group, str) or not group.strip():
        problems.append("concurrency.group must be a group name, e.g. deploy-${buildable.ref}")
    elif any(name.startswith("target.") for name in VARIABLE.findall(group)):
        problems.append(
            "concurrency.group must not use ${target.…}: a target is queued before it has them"
        )
    else:
        length_problem(problems, "concurrency.group", group, BuildTarget, "concurrency_group")
    limit = value.get("limit")
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int)
        or not 1 <= limit <= MAX_CONCURRENCY_LIMIT
    ):
        problems.append(
            f"concurrency.limit must be a whole number from 1 to {MAX_CONCURRENCY_LIMIT}, "
            f"not {limit!r}"
        )


def _check_cancel_hook(hook: Any, problems: list[str]) -> None:
    """``on_abort`` is ``{url: http(s)://…, method: POST}`` (method optional)."""
    if hook is None:
        return
    if not isinstance(hook, dict) or not isinstance(hook.get("url"), str):
        problems.append("on_abort must be a mapping with a url")
        return
    if not hook["url"].startswith(("http://", "https://")):
        problems.append("on_abort url must start with http:// or https://")
    if str(hook.get("method", "POST")).upper() not in HOOK_METHODS:
        problems.append(f"on_abort method must be one of {', '.join(HOOK_METHODS)}")
    unknown = sorted(map(str, set(hook) - {"url", "method"}))
    if unknown:
        problems.append(f"unknown on_abort field(s): {', '.join(unknown)}")


def _retry(value: Any, problems: list[str]) -> dict:
    """Check ``retry: {limit: 1..10, on: [failed, lost, timeout]}`` (``on`` optional, all
    three by default); return it whole, ``on`` filled in."""
    if not isinstance(value, dict) or "limit" not in value:
        problems.append("retry must be a mapping with a limit, e.g. {limit: 2, on: [failed]}")
        return {"limit": 0, "on": []}
    # YAML 1.1 (PyYAML) reads the bare key ``on`` as the boolean true, as GitHub Actions
    # users know; it can only have meant ``on`` here.
    value = {("on" if key is True else key): item for key, item in value.items()}
    unknown = sorted(map(str, set(value) - {"limit", "on"}))
    if unknown:
        problems.append(f"unknown retry field(s): {', '.join(unknown)} (known: limit, on)")
    limit = value["limit"]
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RETRIES:
        problems.append(
            f"retry.limit must be a whole number from 1 to {MAX_RETRIES}, not {limit!r}"
        )
    on = value.get("on", list(RETRY_ON))
    if not isinstance(on, list) or not on or not set(map(str, on)) <= set(RETRY_ON):
        problems.append(f"retry.on must list one or more of {', '.join(RETRY_ON)}, not {on!r}")
    return {"limit": limit, "on": list(dict.fromkeys(on)) if isinstance(on, list) else []}


def _artifacts(value: Any, problems: list[str]) -> dict[str, list[str]]:
    """Check ``artifacts: {produces: [keys], consumes: [keys]}``; return it whole (empty
    lists where it is wrong, so the other checks can go on)."""
    if not isinstance(value, dict) or not set(value) <= {"produces", "consumes"}:
        problems.append("artifacts must be a mapping of produces and consumes")
        return {"produces": [], "consumes": []}
    declared = {}
    for which in ("produces", "consumes"):
        keys = value.get(which) or []
        if not isinstance(keys, list) or not all(
            isinstance(item, str) and STEP_KEY_PATTERN.fullmatch(item) for item in keys
        ):
            problems.append(f"artifacts.{which} must list keys like [a-z0-9._-]+")
            keys = []
        declared[which] = list(dict.fromkeys(keys))
    return declared


def _text(raw: dict, field: str, problems: list[str]) -> str:
    value = raw.get(field) or ""
    if not isinstance(value, str):
        problems.append(f"{field} must be text")
        return ""
    return value


def _flag(raw: dict, field: str, problems: list[str]) -> bool:
    value = raw.get(field, False)
    if not isinstance(value, bool):
        problems.append(f"{field} must be true or false, not {value!r}")
        return False
    return value


def _depends_on(value: Any, problems: list[str]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append("depends_on must be a list of step keys")
        return []
    return list(dict.fromkeys(value))


def _check_json(config: dict, problems: list[str]) -> None:
    """Refuse config values JSON cannot hold (YAML dates, sets...)."""
    try:
        json.dumps(config)
    except (TypeError, ValueError) as exc:
        problems.append(f"config cannot be stored as JSON ({exc})")


def length_problem(problems: list[str], what: str, value: str, model: type, field: str) -> None:
    """Report ``value`` longer than ``model.field``'s ``max_length`` (a DataError later)."""
    limit = model._meta.get_field(field).max_length
    if len(value) > limit:
        problems.append(f"{what} is {len(value)} characters long; at most {limit} are allowed")
