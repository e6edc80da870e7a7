"""Plans changed without a shell: each change of a plan kept as a version.

A version is the YAML text a plan was imported from, with its author and time
(``BuildPlanVersion``). The REST API (``messages_api/plans.py``), the plan page's upload and
``manage.py importplan`` all go through ``save_plan_version``: the YAML is checked whole as
``importplan`` checks it (``builds.plans.check_plan``), then the plan and its new version are
written in one transaction, so a refused plan leaves no version and a version always
describes the steps it was saved with. The plan's row lock, which ``save_checked_plan``
takes first, numbers a plan's versions one after the other whatever saves race.

Versions are shown to everyone who may read plans, so ``mask_yaml`` hides in their text what
``builds.secrets.mask_config`` hides in a step's configuration.
"""

import difflib
import re

import yaml
from django.db import IntegrityError, transaction

from builds.models import BuildPlan, BuildPlanVersion
from builds.plans import PlanError, check_plan, load_plan_text, save_checked_plan
from builds.secrets import MASK, is_sensitive_name, mask_text


class PlanExists(Exception):
    """A plan of that name exists already (creating it again is a conflict, 409)."""


def validate_plan_text(text: str, plan: BuildPlan | None = None) -> dict:
    """Check plan YAML ``text`` as ``save_plan_version`` would (as a change of ``plan`` if
    given), writing nothing; returns the plan's fields. Raises ``PlanError`` listing every
    problem."""
    fields, _ = check_plan(load_plan_text(text))
    _check_name(fields, plan)
    return fields


def _check_name(fields: dict, plan: BuildPlan | None) -> None:
    if plan is not None and fields["name"] != plan.name:
        raise PlanError(
            f"the YAML names the plan {fields['name']!r}, but this is plan {plan.name!r}; "
            "a plan cannot be renamed"
        )


def save_plan_version(
    text: str, *, author=None, plan: BuildPlan | None = None, create: bool = False
) -> tuple[BuildPlan, BuildPlanVersion]:
    """Import plan YAML ``text`` and keep it as the plan's next version by ``author``.

    With ``plan``, the YAML must name that plan (renaming is refused); with ``create``, no
    plan of its name may exist yet. YAML equal to the latest version's makes no new version
    (the latest is returned). Raises ``PlanError`` (every problem; nothing written) or
    ``PlanExists``.
    """
    fields, steps = check_plan(load_plan_text(text))
    _check_name(fields, plan)
    try:
        with transaction.atomic():
            if create and BuildPlan.objects.filter(name=fields["name"]).exists():
                raise PlanExists(fields["name"])
            # Locks an existing plan's row until the commit (see the module docstring).
            saved = save_checked_plan(fields, steps)
            return saved, _record_version(saved, text, author)
    except IntegrityError as exc:
        # Only a plan of this name created by a concurrent transaction gets here.
        raise PlanExists(fields["name"]) from exc


def _record_version(plan: BuildPlan, text: str, author) -> BuildPlanVersion:
    latest = latest_version(plan)
    if latest is not None and latest.yaml == text:
        return latest
    number = latest.number + 1 if latest else 1
    return BuildPlanVersion.objects.create(plan=plan, number=number, yaml=text, author=author)


def latest_version(plan: BuildPlan) -> BuildPlanVersion | None:
    """The plan's newest version, or None if it was never versioned."""
    return plan.versions.order_by("-number").first()


def current_yaml(plan: BuildPlan) -> str:
    """The plan's YAML: its latest version's text, or for a plan imported before versions
    were kept, YAML written from its stored fields and steps (which imports to the same)."""
    latest = latest_version(plan)
    return latest.yaml if latest else plan_as_yaml(plan)


def plan_as_yaml(plan: BuildPlan) -> str:
    """YAML for ``plan`` as stored (steps in order, each step's options after its fields)."""
    data: dict = {"name": plan.name}
    if plan.description:
        data["description"] = plan.description
    if plan.behaviors:
        data["behaviors"] = plan.behaviors
    if plan.run_group_id:
        data["run_group"] = plan.run_group.name
    if plan.triggers:
        data["triggers"] = plan.triggers
    if plan.notify:
        data["notify"] = plan.notify
    data["steps"] = [_step_data(step) for step in plan.steps.order_by("sequence", "id")]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _step_data(step) -> dict:
    data = {"key": step.key, "name": step.name, "type": step.step_type}
    if step.depends_on:
        data["depends_on"] = list(step.depends_on)
    if step.wait_for_message:
        data["wait_for_message"] = True
    if step.description:
        data["description"] = step.description
    return {**data, **step.config}


def version_diff(older: BuildPlanVersion | None, newer: BuildPlanVersion) -> list[str]:
    """The unified diff (``difflib``) from ``older`` (nothing if None) to ``newer``, as
    lines, both masked by ``mask_yaml``."""
    before = mask_yaml(older.yaml).splitlines() if older else []
    return list(
        difflib.unified_diff(
            before,
            mask_yaml(newer.yaml).splitlines(),
            f"version {older.number}" if older else "nothing",
            f"version {newer.number}",
            lineterm="",
        )
    )


# ``name: value`` on a line of block YAML (after any list dashes), and ``name: value`` items
# of a flow mapping (``{Authorization: Bearer x, Accept: json}``).
BLOCK_ITEM = re.compile(
    r"^(?P<keep>\s*(?:-\s+)*(?P<name>[^\s:#{}\[\],][^:#{}]*?)\s*:\s+)(?P<value>\S.*)$"
)
FLOW_ITEM = re.compile(r"(?P<keep>[{,]\s*(?P<name>[^\s:{},]+)\s*:\s*)(?P<value>[^,}]+)")


# A step's own ``key`` is no secret, though a key named "key" in its options would be.
PLAN_WORDS = frozenset({"key", "name", "type", "depends_on", "description"})


def _is_secret_name(name: str) -> bool:
    name = name.strip("'\"")
    return name not in PLAN_WORDS and is_sensitive_name(name)


def mask_yaml(text: str) -> str:
    """Plan YAML ``text`` with secret-looking values replaced by ``********``, line by line:
    the value of a key named like a secret, an HTTP authorization value, the password of a
    URI and query parameters named like secrets (``builds.secrets``). Comments and layout
    are kept, so two masked versions still diff line for line."""
    lines, hidden_below = [], None
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        if hidden_below is not None and (indent > hidden_below or not line.strip()):
            lines.append(line[:indent] + MASK if line.strip() else line)
            continue
        hidden_below = None
        match = BLOCK_ITEM.match(line)
        if match and _is_secret_name(match["name"]) and match["value"][:1] in "|>":
            hidden_below = indent  # a block scalar: its lines are the secret
        lines.append(_mask_line(line))
    return "\n".join(lines)


def _mask_line(line: str) -> str:
    match = BLOCK_ITEM.match(line)
    if match and not match["value"].startswith(("{", "[")):
        return _mask_item(match)
    return FLOW_ITEM.sub(_mask_item, line)


def _mask_item(match: re.Match) -> str:
    value = match["value"]
    if _is_secret_name(match["name"]) and value.strip() not in ("|", ">"):
        return match["keep"] + MASK
    inner = value.strip().strip("'\"")
    masked = mask_text(inner)
    return match["keep"] + (value if masked == inner else value.replace(inner, masked))
