"""Plans are code: read a plan from YAML, check it whole, then create or update it by name.

The YAML shape (docs/design.md §4.2)::

    name: example
    description: Trigger the external CI and wait for its verdict.
    behaviors: {restartable: always, affects_buildable: always}
    run_group: release-team         # optional: only this group may run it (builds/permissions.py)
    triggers:                       # optional: forge events starting it (plan_triggers.py)
      - {forge: github, repository: acme/widgets, events: [push], branches: [main]}
    notify:                         # optional: webhooks told of its builds (plan_notify.py)
      - {url: "https://chat.example.com/hook", events: [build.completed], secret: chat}
    steps:
      - key: external-ci            # [a-z0-9._-]+, unique within the plan
        name: Run the external CI   # optional, defaults to the key
        type: http                  # a step type of builds/step_options.py
        depends_on: []              # keys of steps of this plan
        wait_for_message: true      # optional, default false
        description: ...            # optional
        artifacts:                  # optional: artifact keys it produces and consumes
          produces: [report]
          consumes: []
        uri: "http://..."           # the type's options and the ones below go into
                                    # the step's config; any other key is refused
        method: POST
        wait_timeout: 3600          # optional, seconds; needs wait_for_message
        on_timeout: fail            # optional, fail (default) or pass
        on_abort: {url: "http://...", method: POST}  # optional cancel hook

Behaviors follow Harbormaster's ``HarbormasterBuildPlanBehavior`` (docs/harbormaster.md §3 "Plan
behaviors"): ``restartable`` is always/failed/never and ``affects_buildable`` (Harbormaster's
``buildable``) is always/building/never; a missing behavior means ``always``.

Artifacts add implicit dependencies, as Harbormaster's (docs/harbormaster.md §1.6 step 8): a step
that ``consumes`` a key depends on the step that ``produces`` it, added to its ``depends_on``
here, so the engine needs to know nothing about artifacts. A consumed key no step produces,
or a key two steps produce, is refused. Each step's options are checked against its
type's declaration (``builds/step_options.py``, via ``builds/plan_steps.py``).

A refused plan is refused with every problem found, not only the first, each naming its
step and option; nothing is written.
"""

import difflib
from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth.models import Group
from django.db import transaction

from builds.models import BuildPlan, BuildStep
from builds.plan_notify import parse_notify
from builds.plan_steps import length_problem, parse_step
from builds.plan_triggers import parse_triggers

PLAN_FIELDS = frozenset(
    {"name", "description", "behaviors", "steps", "run_group", "triggers", "notify"}
)
BEHAVIOR_OPTIONS = {
    "restartable": ("always", "failed", "never"),
    "affects_buildable": ("always", "building", "never"),
}


class PlanError(ValueError):
    """A plan that cannot be imported. ``problems`` lists every problem found, each saying
    what is wrong and where (step and option); the message is them, one a line."""

    def __init__(self, *problems: str):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def load_plan_file(path: str | Path) -> dict:
    """Read a plan from the YAML file at ``path`` (``yaml.safe_load``).

    Raises ``OSError`` if the file cannot be read and ``PlanError`` if it is not valid YAML
    or its top level is not a mapping.
    """
    return load_plan_text(Path(path).read_text(encoding="utf-8"))


def load_plan_text(text: str) -> dict:
    """Read a plan from YAML ``text`` (``yaml.safe_load``). Raises ``PlanError`` if it is
    not valid YAML or its top level is not a mapping."""
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

    Raises ``PlanError`` listing every problem: a missing name, a missing or empty steps
    list, a bad behavior, a NUL character anywhere (PostgreSQL cannot store it), a name, key
    or run_group longer than its column, a bad or duplicate step key, an unknown step type,
    an unknown option (the nearest known one suggested), a missing required option, an
    option of the wrong kind, an unknown ``${variable}``, ``wait_for_message`` on a step type
    that never waits (Harbormaster: only steps handing work to another system), bad
    lifecycle options or ``artifacts``, a trigger naming an unknown forge or event (or
    otherwise malformed: ``builds.plan_triggers``), a ``notify`` webhook with an unknown
    field or event, a bad URL or a secret no credential has (``builds.plan_notify``), an
    artifact consumed but never produced or produced twice, a ``depends_on`` naming a
    missing step, or a dependency cycle.
    """
    return save_checked_plan(*check_plan(data))


def check_plan(data: Any) -> tuple[dict, list[dict]]:
    """Check ``data`` as ``import_plan`` does, writing nothing: returns the plan's fields
    and its steps' ``BuildStep`` fields, ready to save. Raises ``PlanError`` listing every
    problem (those of ``import_plan``)."""
    problems = _nul_problems(data)
    plan_fields = _parse_plan(data, problems)
    raw_steps = data.get("steps") if isinstance(data, dict) else None
    steps: list[dict | None] = []
    if isinstance(raw_steps, list):
        steps = [parse_step(index, raw, problems) for index, raw in enumerate(raw_steps)]
        _check_steps_together([step for step in steps if step is not None], problems)
    if problems:
        raise PlanError(*problems)
    return plan_fields, [step for step in steps if step is not None]


def _check_steps_together(steps: list[dict], problems: list[str]) -> None:
    """The checks across steps: unique keys, artifacts, dependencies (which artifacts add)."""
    _check_keys_unique(steps, problems)
    _add_artifact_dependencies(steps, problems)
    _check_dependencies(steps, problems)


def _parse_plan(data: Any, problems: list[str]) -> dict:
    """Check the plan's own fields; return name, description, behaviors and run_group."""
    if not isinstance(data, dict):
        problems.append("a plan must be a mapping with name and steps")
        return {}
    for name in sorted(map(str, set(data) - PLAN_FIELDS)):
        nearest = difflib.get_close_matches(name, sorted(PLAN_FIELDS), n=1)
        hint = f" (did you mean {nearest[0]!r}?)" if nearest else ""
        problems.append(f"unknown plan field {name!r}{hint}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append("the plan has no name")
        name = ""
    label = f"plan {name!r}" if name else "the plan"
    if not isinstance(data.get("steps"), list) or not data["steps"]:
        problems.append(f"{label} has no steps list")
    description = data.get("description") or ""
    if not isinstance(description, str):
        problems.append(f"{label}: description must be text")
    length_problem(problems, "the plan's name", name.strip(), BuildPlan, "name")
    return {
        "name": name.strip(),
        "description": description,
        "behaviors": _parse_behaviors(data.get("behaviors"), problems),
        "run_group": _run_group_name(name, data.get("run_group"), problems),
        "triggers": parse_triggers(data.get("triggers"), problems),
        "notify": parse_notify(data.get("notify"), problems),
    }


def _run_group_name(plan_name: str, value: Any, problems: list[str]) -> str | None:
    """The name of the group allowed to run the plan (see builds/permissions.py), or None
    for every signed-in user."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"plan {plan_name!r}: run_group must be a group name")
        return None
    length_problem(problems, f"plan {plan_name!r}: run_group", value.strip(), Group, "name")
    return value.strip()


def _parse_behaviors(behaviors: Any, problems: list[str]) -> dict:
    """Check ``behaviors`` against ``BEHAVIOR_OPTIONS``; return it as a plain dict."""
    if behaviors is None:
        return {}
    if not isinstance(behaviors, dict):
        problems.append("behaviors must be a mapping, e.g. {restartable: always}")
        return {}
    for key, value in behaviors.items():
        if key not in BEHAVIOR_OPTIONS:
            known = ", ".join(BEHAVIOR_OPTIONS)
            problems.append(f"unknown behavior {key!r} (known: {known})")
        elif value not in BEHAVIOR_OPTIONS[key]:
            options = "/".join(BEHAVIOR_OPTIONS[key])
            problems.append(f"behavior {key!r} is {value!r}; it must be one of {options}")
    return dict(behaviors)


def _add_artifact_dependencies(steps: list[dict], problems: list[str]) -> None:
    """Make each step that consumes an artifact depend on the step producing it."""
    producers: dict[str, str] = {}
    for step in steps:
        for artifact in step["config"].get("artifacts", {}).get("produces", []):
            if artifact in producers:
                problems.append(
                    f"steps {producers[artifact]!r} and {step['key']!r} both produce "
                    f"the artifact {artifact!r}"
                )
            producers.setdefault(artifact, step["key"])
    for step in steps:
        for artifact in step["config"].get("artifacts", {}).get("consumes", []):
            producer = producers.get(artifact)
            if producer is None:
                problems.append(
                    f"step {step['key']!r} consumes the artifact {artifact!r}, "
                    "which no step produces"
                )
            elif producer == step["key"]:
                problems.append(f"step {producer!r} consumes the artifact {artifact!r} it produces")
            elif producer not in step["depends_on"]:
                step["depends_on"].append(producer)


def _nul_problems(data: Any) -> list[str]:
    """A problem for each NUL character in a string of the plan, keys included (PostgreSQL
    refuses it in text and JSON columns), naming where it is (``steps[0].config``). Walked
    without recursion."""
    problems = []
    pending: list[tuple[Any, str]] = [(data, "the plan")]
    while pending:
        value, where = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                problems.append(f"{where} contains a NUL character (\\x00)")
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{where}.{key}" if where != "the plan" else str(key)
                pending.append((item, child))
                pending.append((key, f"a key in {where}"))  # popped first: checked first
        elif isinstance(value, list):
            pending.extend((item, f"{where}[{index}]") for index, item in enumerate(value))
    return problems


def _check_keys_unique(steps: list[dict], problems: list[str]) -> None:
    seen: set[str] = set()
    for step in steps:
        if step["key"] in seen:
            problems.append(f"step {step['key']!r} appears more than once")
        seen.add(step["key"])


def _check_dependencies(steps: list[dict], problems: list[str]) -> None:
    """Report a ``depends_on`` naming a missing step, and a cycle (named, e.g. a -> b -> a)."""
    graph = {step["key"]: step["depends_on"] for step in steps}
    for key, depends_on in graph.items():
        for dependency in depends_on:
            if dependency not in graph:
                problems.append(f"step {key!r} depends on {dependency!r}, which is not a step")
    cycle = _find_cycle(
        {key: [d for d in depends_on if d in graph] for key, depends_on in graph.items()}
    )
    if cycle:
        problems.append("steps depend on each other in a cycle: " + " -> ".join(cycle))


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
def save_checked_plan(fields: dict, steps: list[dict]) -> BuildPlan:
    """Write a plan ``check_plan`` returned: update it in place, its row locked ``FOR
    UPDATE`` until the transaction ends, or create it (IntegrityError if another
    transaction created one of that name first), then its steps."""
    group_name = fields.pop("run_group")
    fields["run_group"] = Group.objects.get_or_create(name=group_name)[0] if group_name else None
    plan = BuildPlan.objects.select_for_update().filter(name=fields["name"]).first()
    if plan is None:
        plan = BuildPlan.objects.create(**fields)
    else:
        for name, value in fields.items():
            setattr(plan, name, value)
        plan.save(
            update_fields=[
                "description",
                "behaviors",
                "run_group",
                "triggers",
                "notify",
                "date_modified",
            ]
        )
    existing = {step.key: step for step in plan.steps.all()}
    plan.steps.exclude(key__in=[step["key"] for step in steps]).delete()
    for sequence, step in enumerate(steps):
        row = existing.get(step["key"]) or BuildStep(plan=plan, key=step["key"])
        for name, value in step.items():
            setattr(row, name, value)
        row.sequence = sequence
        row.save()
    return plan
