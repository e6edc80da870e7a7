"""Which plans a forge event starts: the plans' ``triggers`` (builds/plan_triggers.py)
matched against a ``ForgeEvent``, and, when none matches, why not."""

from fnmatch import fnmatchcase

from builds.models import BuildPlan
from builds.plan_triggers import TAG
from forges.events import ForgeEvent


def plans_to_start(forge_name: str, event: ForgeEvent) -> tuple[list[BuildPlan], str]:
    """The active plans with a trigger matching ``event`` from forge ``forge_name`` (in id
    order, each once), and ``""``; or no plans and why the event starts none (the event's
    own reason, a deleted branch, no trigger for the repository, for the kind of event, or
    for the branch or tag)."""
    reason = _why_never(event)
    if reason:
        return [], reason
    candidates = BuildPlan.objects.filter(
        status=BuildPlan.Status.ACTIVE, triggers__contains=[{"forge": forge_name}]
    ).order_by("pk")
    pairs = [
        (plan, trigger)
        for plan in candidates
        for trigger in plan.triggers
        if trigger["forge"] == forge_name and _same_repository(trigger, event)
    ]
    if not pairs:
        return [], f"no plan has a trigger for {forge_name} {event.repository}"
    pairs = [(plan, trigger) for plan, trigger in pairs if event.kind in trigger["events"]]
    if not pairs:
        return [], f"no trigger of {event.repository} asks for {event.kind} events"
    # Pairs are in plan order; a plan with several matching triggers starts once.
    plans = list(dict.fromkeys(plan for plan, trigger in pairs if _name_matches(trigger, event)))
    if not plans:
        return [], f"{_what(event)} {event.name!r} matches no trigger's {_globs_key(event)}"
    return plans, ""


def _why_never(event: ForgeEvent) -> str:
    """Why ``event`` starts no build whatever the triggers, or ''."""
    if event.ignored:
        return event.ignored
    if event.deleted:
        return f"the push deletes the {_what(event)} {event.name!r}"
    return ""


def _same_repository(trigger: dict, event: ForgeEvent) -> bool:
    # Forges treat repository paths without regard to case (Acme/Widgets is acme/widgets).
    return trigger["repository"].casefold() == event.repository.casefold()


def _name_matches(trigger: dict, event: ForgeEvent) -> bool:
    globs = trigger[_globs_key(event)]
    return globs is None or any(fnmatchcase(event.name, glob) for glob in globs)


def _globs_key(event: ForgeEvent) -> str:
    return "tags" if event.kind == TAG else "branches"


def _what(event: ForgeEvent) -> str:
    return "tag" if event.kind == TAG else "branch"
