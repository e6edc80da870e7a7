"""Plans are code: read a plan from YAML, check it whole, then create or update it by name.

The YAML shape is DESIGN.md §4 "Plan YAML"::

    name: example
    description: Trigger the external CI and wait for its verdict.
    behaviors: {restartable: always, affects_buildable: always}
    run_group: release-team         # optional: only this group may run it (builds/permissions.py)
    steps:
      - key: external-ci            # [a-z0-9._-]+, unique within the plan
        name: Run the external CI   # optional, defaults to the key
        type: http                  # a name in workers.steps.STEP_TYPES
        depends_on: []              # keys of steps of this plan
        wait_for_message: true      # optional, default false
        description: ...            # optional
        artifacts:                  # optional: artifact keys it produces and consumes
          produces: [report]
          consumes: []
        uri: "http://..."           # every other key goes into the step's config
        method: POST
        wait_timeout: 3600          # optional, seconds; needs wait_for_message
        on_timeout: fail            # optional, fail (default) or pass
        on_abort: {url: "http://...", method: POST}  # optional cancel hook

Behaviors follow Harbormaster's ``HarbormasterBuildPlanBehavior`` (spec §3 "Plan behaviors"):
``restartable`` is always/failed/never and ``affects_buildable`` (Harbormaster's
``buildable``) is always/building/never; a missing behavior means ``always``.

Artifacts add implicit dependencies, as Harbormaster's (spec §1.6 step 8): a step that
``consumes`` a key depends on the step that ``produces`` it, added to its ``depends_on``
here, so the engine needs to know nothing about artifacts. A consumed key no step produces,
or a key two steps produce, is refused. Step types may check their own config at import
(``check_config(config)`` raising ValueError, e.g. the ``command`` step).
"""

import json
import re
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth.models import Group
from django.db import transaction

from builds.models import BuildPlan, BuildStep

STEP_KEY_PATTERN = re.compile(r"[a-z0-9._-]+")
PLAN_FIELDS = frozenset({"name", "description", "behaviors", "steps", "run_group"})
ON_TIMEOUT_OUTCOMES = ("fail", "pass")
MAX_WAIT_TIMEOUT = 365 * 24 * 3600  # seconds; NaN and infinity fail the range check too
HOOK_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
STEP_FIELDS = frozenset({"key", "name", "type", "depends_on", "wait_for_message", "description"})
BEHAVIOR_OPTIONS = {
    "restartable": ("always", "failed", "never"),
    "affects_buildable": ("always", "building", "never"),
}


class PlanError(ValueError):
    """A plan that cannot be imported; the message says what is wrong and where."""


def load_plan_file(path: str | Path) -> dict:
    """Read a plan from the YAML file at ``path`` (``yaml.safe_load``).

    Raises ``OSError`` if the file cannot be read and ``PlanError`` if it is not valid YAML
    or its top level is not a mapping.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlanError(f"invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PlanError("a plan must be a YAML mapping with name and steps")
    return data


def import_plan(data: dict) -> BuildPlan:
    """Create or update the plan named ``data["name"]`` and replace its steps with ``data``'s.

    Everything is checked before anything is written, and the write is one transaction, so a
    refused plan changes nothing. Steps keep their PHID across imports when their key stays.
    Builds already started are unaffected: each keeps its own ``plan_snapshot``.

    Raises ``PlanError`` for a missing name, a missing or empty steps list, a bad behavior,
    a NUL character anywhere (PostgreSQL cannot store it), a name, key or run_group longer
    than its column, a bad or duplicate step key, an unknown step type,
    ``wait_for_message`` on a step type that never waits (Harbormaster: only steps handing
    work to another system), a config its step type refuses (``check_config``), a bad
    ``artifacts`` declaration, an artifact consumed but never produced or produced twice,
    a ``depends_on`` naming a missing step, or a dependency cycle.
    """
    _check_no_nul(data)
    plan_fields = _parse_plan(data)
    steps = [_parse_step(index, raw) for index, raw in enumerate(data["steps"])]
    _check_keys_unique(steps)
    _add_artifact_dependencies(steps)
    _check_dependencies(steps)
    return _save_plan(plan_fields, steps)


def _parse_plan(data: Any) -> dict:
    """Check the plan's own fields; return name, description and behaviors."""
    if not isinstance(data, dict):
        raise PlanError("a plan must be a mapping with name and steps")
    unknown = sorted(set(data) - PLAN_FIELDS)
    if unknown:
        raise PlanError(f"unknown plan field(s): {', '.join(map(str, unknown))}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PlanError("the plan has no name")
    if not isinstance(data.get("steps"), list) or not data["steps"]:
        raise PlanError(f"plan {name!r} has no steps list")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise PlanError(f"plan {name!r}: description must be text")
    _check_length("the plan's name", name.strip(), BuildPlan, "name")
    return {
        "name": name.strip(),
        "description": description,
        "behaviors": _parse_behaviors(data.get("behaviors")),
        "run_group": _run_group_name(name, data.get("run_group")),
    }


def _run_group_name(plan_name: str, value: Any) -> str | None:
    """The name of the group allowed to run the plan (see builds/permissions.py), or None
    for every signed-in user."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise PlanError(f"plan {plan_name!r}: run_group must be a group name")
    _check_length(f"plan {plan_name!r}: run_group", value.strip(), Group, "name")
    return value.strip()


def _parse_behaviors(behaviors: Any) -> dict:
    """Check ``behaviors`` against ``BEHAVIOR_OPTIONS``; return it as a plain dict."""
    if behaviors is None:
        return {}
    if not isinstance(behaviors, dict):
        raise PlanError("behaviors must be a mapping, e.g. {restartable: always}")
    for key, value in behaviors.items():
        if key not in BEHAVIOR_OPTIONS:
            known = ", ".join(BEHAVIOR_OPTIONS)
            raise PlanError(f"unknown behavior {key!r} (known: {known})")
        if value not in BEHAVIOR_OPTIONS[key]:
            options = "/".join(BEHAVIOR_OPTIONS[key])
            raise PlanError(f"behavior {key!r} is {value!r}; it must be one of {options}")
    return dict(behaviors)


def _parse_step(index: int, raw: Any) -> dict:
    """Check one step of the YAML; return the BuildStep fields it gives."""
    if not isinstance(raw, dict):
        raise PlanError(f"step #{index + 1} must be a mapping with key and type")
    key = raw.get("key")
    if not isinstance(key, str) or not STEP_KEY_PATTERN.fullmatch(key):
        raise PlanError(f"step #{index + 1}: key {key!r} must match [a-z0-9._-]+")
    _check_length(f"step #{index + 1}: key", key, BuildStep, "key")
    step_type = raw.get("type")
    step_types = _step_types()
    if step_type not in step_types:
        known = ", ".join(sorted(step_types))
        raise PlanError(f"step {key!r}: unknown step type {step_type!r} (known: {known})")
    config = {name: value for name, value in raw.items() if name not in STEP_FIELDS}
    if "artifacts" in config:
        config["artifacts"] = _artifacts(key, config["artifacts"])
    _check_json(key, config)
    _check_config(key, step_types[step_type], config)
    wait_for_message = _flag(key, raw, "wait_for_message")
    if wait_for_message and not getattr(step_types[step_type], "supports_wait_for_message", True):
        raise PlanError(f"step {key!r}: a {step_type} step cannot wait for a message")
    _check_wait_timeout(key, config, wait_for_message)
    _check_cancel_hook(key, config.get("on_abort"))
    name = _text(key, raw, "name") or key
    _check_length(f"step {key!r}: name", name, BuildStep, "name")
    return {
        "key": key,
        "name": name,
        "step_type": step_type,
        "config": config,
        "depends_on": _depends_on(key, raw.get("depends_on")),
        "wait_for_message": wait_for_message,
        "description": _text(key, raw, "description"),
    }


def _check_wait_timeout(key: str, config: dict, wait_for_message: bool) -> None:
    """``wait_timeout`` (seconds > 0) needs ``wait_for_message``; ``on_timeout`` is fail or
    pass and needs ``wait_timeout``."""
    timeout = config.get("wait_timeout")
    if timeout is not None:
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= MAX_WAIT_TIMEOUT
        ):
            raise PlanError(
                f"step {key!r}: wait_timeout must be a number of seconds above 0 and at most "
                f"{MAX_WAIT_TIMEOUT} (a year)"
            )
        if not wait_for_message:
            raise PlanError(f"step {key!r}: wait_timeout needs wait_for_message: true")
    on_timeout = config.get("on_timeout")
    if on_timeout is not None:
        if on_timeout not in ON_TIMEOUT_OUTCOMES:
            raise PlanError(f"step {key!r}: on_timeout must be fail or pass, not {on_timeout!r}")
        if timeout is None:
            raise PlanError(f"step {key!r}: on_timeout needs a wait_timeout")


def _check_cancel_hook(key: str, hook: Any) -> None:
    """``on_abort`` is ``{url: http(s)://…, method: POST}`` (method optional)."""
    if hook is None:
        return
    if not isinstance(hook, dict) or not isinstance(hook.get("url"), str):
        raise PlanError(f"step {key!r}: on_abort must be a mapping with a url")
    if not hook["url"].startswith(("http://", "https://")):
        raise PlanError(f"step {key!r}: on_abort url must start with http:// or https://")
    if str(hook.get("method", "POST")).upper() not in HOOK_METHODS:
        raise PlanError(f"step {key!r}: on_abort method must be one of {', '.join(HOOK_METHODS)}")
    unknown = sorted(set(hook) - {"url", "method"})
    if unknown:
        raise PlanError(f"step {key!r}: unknown on_abort field(s): {', '.join(unknown)}")


def _check_config(key: str, step_class: type, config: dict) -> None:
    """Let the step type refuse its config (``check_config``, if it has one)."""
    check = getattr(step_class, "check_config", None)
    if check is None:
        return
    try:
        check(config)
    except ValueError as exc:
        raise PlanError(f"step {key!r}: {exc}") from exc


def _artifacts(key: str, value: Any) -> dict[str, list[str]]:
    """Check a step's ``artifacts: {produces: [keys], consumes: [keys]}``; return it whole."""
    if not isinstance(value, dict) or not set(value) <= {"produces", "consumes"}:
        raise PlanError(f"step {key!r}: artifacts must be a mapping of produces and consumes")
    declared = {}
    for which in ("produces", "consumes"):
        keys = value.get(which) or []
        if not isinstance(keys, list) or not all(
            isinstance(item, str) and STEP_KEY_PATTERN.fullmatch(item) for item in keys
        ):
            raise PlanError(f"step {key!r}: artifacts.{which} must list keys like [a-z0-9._-]+")
        declared[which] = list(dict.fromkeys(keys))
    return declared


def _add_artifact_dependencies(steps: list[dict]) -> None:
    """Make each step that consumes an artifact depend on the step producing it."""
    producers: dict[str, str] = {}
    for step in steps:
        for artifact in step["config"].get("artifacts", {}).get("produces", []):
            if artifact in producers:
                raise PlanError(
                    f"steps {producers[artifact]!r} and {step['key']!r} both produce "
                    f"the artifact {artifact!r}"
                )
            producers[artifact] = step["key"]
    for step in steps:
        for artifact in step["config"].get("artifacts", {}).get("consumes", []):
            producer = producers.get(artifact)
            if producer is None:
                raise PlanError(
                    f"step {step['key']!r} consumes the artifact {artifact!r}, "
                    "which no step produces"
                )
            if producer == step["key"]:
                raise PlanError(f"step {producer!r} consumes the artifact {artifact!r} it produces")
            if producer not in step["depends_on"]:
                step["depends_on"].append(producer)


def _step_types() -> dict:
    """The step type registry (imported late: workers.steps imports Django models)."""
    from workers.steps import STEP_TYPES

    return STEP_TYPES


def _text(key: str, raw: dict, field: str) -> str:
    value = raw.get(field) or ""
    if not isinstance(value, str):
        raise PlanError(f"step {key!r}: {field} must be text")
    return value


def _flag(key: str, raw: dict, field: str) -> bool:
    value = raw.get(field, False)
    if not isinstance(value, bool):
        raise PlanError(f"step {key!r}: {field} must be true or false, not {value!r}")
    return value


def _depends_on(key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PlanError(f"step {key!r}: depends_on must be a list of step keys")
    return list(dict.fromkeys(value))


def _check_json(key: str, config: dict) -> None:
    """Refuse config values JSON cannot hold (YAML dates, sets...), naming the step."""
    try:
        json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"step {key!r}: config cannot be stored as JSON ({exc})") from exc


def _check_no_nul(data: Any) -> None:
    """Refuse a NUL character in any string of the plan, keys included (PostgreSQL refuses
    it in text and JSON columns), naming where it is (``steps[0].config``). Walked without
    recursion."""
    pending: list[tuple[Any, str]] = [(data, "the plan")]
    while pending:
        value, where = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise PlanError(f"{where} contains a NUL character (\\x00)")
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{where}.{key}" if where != "the plan" else str(key)
                pending.append((item, child))
                pending.append((key, f"a key in {where}"))  # popped first: checked first
        elif isinstance(value, list):
            pending.extend((item, f"{where}[{index}]") for index, item in enumerate(value))


def _check_length(what: str, value: str, model: type, field: str) -> None:
    """Refuse ``value`` longer than ``model.field``'s ``max_length`` (a DataError later)."""
    limit = model._meta.get_field(field).max_length
    if len(value) > limit:
        raise PlanError(f"{what} is {len(value)} characters long; at most {limit} are allowed")


def _check_keys_unique(steps: list[dict]) -> None:
    seen: set[str] = set()
    for step in steps:
        if step["key"] in seen:
            raise PlanError(f"step {step['key']!r} appears more than once")
        seen.add(step["key"])


def _check_dependencies(steps: list[dict]) -> None:
    """Refuse a ``depends_on`` naming a missing step, or a cycle (named, e.g. a -> b -> a)."""
    graph = {step["key"]: step["depends_on"] for step in steps}
    for key, depends_on in graph.items():
        for dependency in depends_on:
            if dependency not in graph:
                raise PlanError(f"step {key!r} depends on {dependency!r}, which is not a step")
    cycle = _find_cycle(graph)
    if cycle:
        raise PlanError("steps depend on each other in a cycle: " + " -> ".join(cycle))


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """Return one dependency cycle as a path that ends where it starts, or None.

    Iterative depth-first search with three colours, so a long plan cannot hit the
    recursion limit.
    """
    done: set[str] = set()
    for root in graph:
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        stack = [iter(graph[root])]
        while stack:
            dependency = next(stack[-1], None)
            if dependency is None:
                stack.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif dependency in on_path:
                return path[path.index(dependency) :] + [dependency]
            elif dependency not in done:
                path.append(dependency)
                on_path.add(dependency)
                stack.append(iter(graph[dependency]))
    return None


@transaction.atomic
def _save_plan(fields: dict, steps: list[dict]) -> BuildPlan:
    """Write the checked plan: update it in place (locked) or create it, then its steps."""
    group_name = fields.pop("run_group")
    fields["run_group"] = Group.objects.get_or_create(name=group_name)[0] if group_name else None
    plan = BuildPlan.objects.select_for_update().filter(name=fields["name"]).first()
    if plan is None:
        plan = BuildPlan.objects.create(**fields)
    else:
        for name, value in fields.items():
            setattr(plan, name, value)
        plan.save(update_fields=["description", "behaviors", "run_group", "date_modified"])
    existing = {step.key: step for step in plan.steps.all()}
    plan.steps.exclude(key__in=[step["key"] for step in steps]).delete()
    for sequence, step in enumerate(steps):
        row = existing.get(step["key"]) or BuildStep(plan=plan, key=step["key"])
        for name, value in step.items():
            setattr(row, name, value)
        row.sequence = sequence
        row.save()
    return plan
