"""Reading each forge's webhook payloads into a ``ForgeEvent``.

``HEADERS`` names, per forge type, the headers holding the event's name and the delivery's
id. ``READERS`` maps (forge type, event name) to the function reading that payload; an
event name not there starts no build (``read_event`` returns None) and is answered as
ignored, so the forge neither retries it nor disables the hook.

Field names are the forges' documented ones:

- GitHub ``push``: ``ref``, ``after``, ``deleted``, ``repository.full_name``,
  ``repository.clone_url``; ``pull_request``: ``action``, ``number``,
  ``pull_request.head.sha``, ``pull_request.base.ref``. Gitea's (and Forgejo's) are the
  same shapes, but a pull request's new commits are ``synchronized``, not ``synchronize``,
  and a push has no ``deleted``.
- GitLab ``Push Hook`` and ``Tag Push Hook``: ``ref``, ``after``,
  ``project.path_with_namespace``, ``project.git_http_url``; ``Merge Request Hook``:
  ``object_attributes.action``, ``.iid``, ``.target_branch``, ``.last_commit.id`` and
  ``.oldrev`` (only when the update brought new commits).

A pull request's ref is its head in the base repository (``refs/pull/<n>/head``, GitLab
``refs/merge-requests/<n>/head``), which the base repository's clone URL can fetch even when
the pull request comes from a fork.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from forges.events import (
    PULL_REQUEST,
    PUSH,
    TAG,
    ForgeEvent,
    PayloadError,
    commit_field,
    field,
    is_zero,
    path_field,
    ref_field,
    url_field,
)


@dataclass(frozen=True)
class Headers:
    """The headers naming a webhook's event and its delivery id."""

    event: str
    delivery: str


HEADERS = {
    "github": Headers("X-GitHub-Event", "X-GitHub-Delivery"),
    "gitea": Headers("X-Gitea-Event", "X-Gitea-Delivery"),
    "gitlab": Headers("X-Gitlab-Event", "X-Gitlab-Event-UUID"),
}
# The event a forge sends to check a new hook (GitHub's ``ping``): answered 200, not stored.
PING_EVENTS = {"github": "ping"}
# Pull request actions that bring code to build; any other (closed, labeled…) is ignored.
GITHUB_PR_ACTIONS = frozenset({"opened", "reopened", "synchronize"})
GITEA_PR_ACTIONS = frozenset({"opened", "reopened", "synchronized"})
GITLAB_MR_ACTIONS = frozenset({"open", "reopen"})


def read_event(forge_type: str, event_name: str, payload: Any) -> ForgeEvent | None:
    """``payload`` (parsed JSON) of event ``event_name`` from a forge of ``forge_type`` as a
    ForgeEvent, or None for an event that never starts builds. Raises PayloadError when
    the payload is not the shape that event has."""
    reader = READERS[forge_type].get(event_name)
    if reader is None:
        return None
    if not isinstance(payload, dict):
        raise PayloadError("The payload is not a JSON object.")
    return reader(payload)


def github_push(payload: dict) -> ForgeEvent:
    """A GitHub or Gitea ``push``: a branch or a tag, created, moved or deleted."""
    ref = ref_field(payload, "ref")
    after = commit_field(payload, "after")
    deleted = payload.get("deleted") is True or is_zero(after)
    return ForgeEvent(
        kind=_push_kind(ref),
        repository=path_field(payload, "repository.full_name"),
        clone_url=url_field(payload, "repository.clone_url"),
        ref=ref,
        commit=after,
        deleted=deleted,
        ignored=_other_ref(ref),
    )


def github_pull_request(payload: dict) -> ForgeEvent:
    """A GitHub ``pull_request``; built when opened, reopened or given new commits."""
    return _pull_request(payload, GITHUB_PR_ACTIONS)


def gitea_pull_request(payload: dict) -> ForgeEvent:
    """A Gitea or Forgejo ``pull_request``; built when opened, reopened or synchronized."""
    return _pull_request(payload, GITEA_PR_ACTIONS)


def _pull_request(payload: dict, building_actions: frozenset[str]) -> ForgeEvent:
    action = field(payload, "action")
    number = field(payload, "number", int)
    return ForgeEvent(
        kind=PULL_REQUEST,
        repository=path_field(payload, "repository.full_name"),
        clone_url=url_field(payload, "repository.clone_url"),
        ref=f"refs/pull/{number}/head",
        commit=commit_field(payload, "pull_request.head.sha"),
        pr_number=number,
        base_ref=ref_field(payload, "pull_request.base.ref", "refs/heads/"),
        ignored="" if action in building_actions else f"the pull request was {action}",
    )


def gitlab_push(payload: dict) -> ForgeEvent:
    """A GitLab ``Push Hook`` or ``Tag Push Hook``."""
    ref = ref_field(payload, "ref")
    after = commit_field(payload, "after")
    return ForgeEvent(
        kind=_push_kind(ref),
        repository=path_field(payload, "project.path_with_namespace"),
        clone_url=url_field(payload, "project.git_http_url"),
        ref=ref,
        commit=after,
        deleted=is_zero(after),
        ignored=_other_ref(ref),
    )


def gitlab_merge_request(payload: dict) -> ForgeEvent:
    """A GitLab ``Merge Request Hook``; built when opened, reopened, or updated with new
    commits (an ``update`` with ``oldrev``: a title or label change has none)."""
    action = field(payload, "object_attributes.action")
    number = field(payload, "object_attributes.iid", int)
    new_commits = action == "update" and bool(payload["object_attributes"].get("oldrev"))
    building = action in GITLAB_MR_ACTIONS or new_commits
    return ForgeEvent(
        kind=PULL_REQUEST,
        repository=path_field(payload, "project.path_with_namespace"),
        clone_url=url_field(payload, "project.git_http_url"),
        ref=f"refs/merge-requests/{number}/head",
        commit=commit_field(payload, "object_attributes.last_commit.id"),
        pr_number=number,
        base_ref=ref_field(payload, "object_attributes.target_branch", "refs/heads/"),
        ignored="" if building else _merge_request_ignored(action),
    )


def _merge_request_ignored(action: str) -> str:
    if action == "update":
        return "the merge request was updated without new commits"
    return f"the merge request's action was {action}"


def _push_kind(ref: str) -> str:
    return TAG if ref.startswith("refs/tags/") else PUSH


def _other_ref(ref: str) -> str:
    """Why a push to ``ref`` is ignored if it is neither a branch nor a tag, else ''."""
    if ref.startswith(("refs/heads/", "refs/tags/")):
        return ""
    return f"the push is to {ref}, neither a branch nor a tag"


READERS: dict[str, dict[str, Callable[[dict], ForgeEvent]]] = {
    "github": {"push": github_push, "pull_request": github_pull_request},
    "gitea": {"push": github_push, "pull_request": gitea_pull_request},
    "gitlab": {
        "Push Hook": gitlab_push,
        "Tag Push Hook": gitlab_push,
        "Merge Request Hook": gitlab_merge_request,
    },
}
