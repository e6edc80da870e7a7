"""A plan's ``triggers``: which forge events start its builds, checked whole at import.

::

    triggers:
      - forge: github                   # a forge of HARBOR_FORGES (forges/config.py)
        repository: acme/widgets        # the forge's path; GitLab: group/sub/widgets
        events: [push, pull_request]    # push (a branch), pull_request, tag
        branches: ["main", "release/*"] # globs; default: every branch
      - forge: github
        repository: acme/widgets
        events: [tag]
        tags: ["v*"]                    # globs; default: every tag

``branches`` filters pushed branches and, for a pull request, the branch it targets (its
base); ``tags`` filters pushed tags. Globs are ``fnmatch``'s (``*`` also matches ``/``).
A repository is matched without regard to case, as the forges name them. The matching
itself is ``forges.triggers``'; a plan stores its triggers as checked here (a list of
dicts with every key set) in ``BuildPlan.triggers``.
"""

from typing import Any

from django.conf import settings

# What a trigger's ``events`` may name; a forge's webhook is read into one of these kinds.
PUSH, TAG, PULL_REQUEST = "push", "tag", "pull_request"
TRIGGER_EVENTS = (PUSH, PULL_REQUEST, TAG)
TRIGGER_FIELDS = ("forge", "repository", "events", "branches", "tags")
MAX_REPOSITORY = 500


def parse_triggers(raw: Any, problems: list[str]) -> list[dict]:
    """The plan's ``triggers`` (None for none) as stored: ``[{"forge", "repository",
    "events", "branches", "tags"}]``, ``branches``/``tags`` None for every one. Each
    problem is appended to ``problems`` naming the trigger (``triggers[0] (github
    acme/widgets): unknown forge …``): an unknown field, a forge not in HARBOR_FORGES, a
    bad repository path, an unknown or missing event, or a bad glob list."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append("triggers must be a list of {forge, repository, events}")
        return []
    triggers = []
    for index, item in enumerate(raw):
        found: list[str] = []
        trigger = _trigger(item, found)
        problems += [f"{_label(index, item)}: {problem}" for problem in found]
        if not found:
            triggers.append(trigger)
    return triggers


def _trigger(item: Any, problems: list[str]) -> dict:
    if not isinstance(item, dict):
        problems.append("a trigger must be a mapping with forge, repository and events")
        return {}
    unknown = sorted(map(str, set(item) - set(TRIGGER_FIELDS)))
    if unknown:
        problems.append(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(TRIGGER_FIELDS)}"
        )
    events = _events(item.get("events"), problems)
    return {
        "forge": _forge(item.get("forge"), problems),
        "repository": _repository(item.get("repository"), problems),
        "events": events,
        "branches": _globs(item, "branches", (PUSH, PULL_REQUEST), events, problems),
        "tags": _globs(item, "tags", (TAG,), events, problems),
    }


def _forge(name: Any, problems: list[str]) -> str:
    forges = settings.HARBOR_FORGES
    if not isinstance(name, str) or name not in forges:
        known = ", ".join(sorted(forges)) or "none; set HARBOR_FORGES"
        problems.append(f"unknown forge {name!r} (configured forges: {known})")
    return name


def _repository(path: Any, problems: list[str]) -> str:
    parts = path.split("/") if isinstance(path, str) else []
    if len(parts) < 2 or not all(part and part.strip() == part for part in parts):
        problems.append(
            f"repository {path!r} must be the forge's path of the repository, "
            "e.g. acme/widgets (GitLab: group/sub/widgets)"
        )
    elif len(path) > MAX_REPOSITORY:
        problems.append(f"repository is longer than {MAX_REPOSITORY} characters")
    return path


def _events(events: Any, problems: list[str]) -> list[str]:
    known = ", ".join(TRIGGER_EVENTS)
    if not isinstance(events, list) or not events:
        problems.append(f"events must be a non-empty list of: {known}")
        return []
    for event in events:
        if event not in TRIGGER_EVENTS:
            problems.append(f"unknown event {event!r} (known: {known})")
    return list(dict.fromkeys(events))


def _globs(
    item: dict, key: str, for_events: tuple, events: list, problems: list[str]
) -> list[str] | None:
    """The glob list ``item[key]`` (None: every name), refused when none of the trigger's
    events is one the list filters (a ``tags`` list without ``tag`` never applies)."""
    globs = item.get(key)
    if globs is None:
        return None
    if not isinstance(globs, list) or not globs or not all(_is_text(g) for g in globs):
        problems.append(f"{key} must be a non-empty list of globs, e.g. [main, 'release/*']")
        return None
    if events and not set(events) & set(for_events):
        problems.append(f"{key} filters only {' and '.join(for_events)} events, not these")
    return globs


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _label(index: int, item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("repository"), str):
        return f"triggers[{index}] ({item.get('forge')} {item['repository']})"
    return f"triggers[{index}]"
