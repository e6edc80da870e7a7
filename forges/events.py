"""The neutral event every forge's webhook is read into, and the checked reading of a
payload's fields (``forges.payloads`` has one reader per forge and event)."""

import re
from dataclasses import dataclass
from typing import Any

from builds.plan_triggers import PULL_REQUEST, PUSH, TAG

__all__ = ["PULL_REQUEST", "PUSH", "TAG", "ForgeEvent", "PayloadError"]

ZERO_COMMIT = re.compile(r"0+")
# A Git object name: SHA-1, or SHA-256 for repositories that use it.
COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# Column sizes of Buildable and Delivery (checked here, so a long value is a 400, not a 500).
MAX_URL = 500
MAX_REF = 255
MAX_PATH = 500


class PayloadError(ValueError):
    """The payload is not the event its header says (a field missing or of the wrong
    kind); the message names the field, e.g. ``pull_request.head.sha``."""


@dataclass(frozen=True)
class ForgeEvent:
    """What a push or a pull (merge) request webhook says, the same for every forge.

    ``kind`` is ``push`` (a branch), ``tag`` or ``pull_request``; ``repository`` the
    forge's path of the repository (``acme/widgets``, GitLab ``group/sub/widgets``);
    ``clone_url`` where Git fetches it; ``ref`` the full ref built (``refs/heads/main``,
    ``refs/tags/v1``, or the pull request's head in the base repository,
    ``refs/pull/7/head``, GitLab ``refs/merge-requests/7/head``); ``commit`` its commit.
    For a pull request, ``pr_number`` and ``base_ref`` (``refs/heads/main``). ``deleted``
    for a push that deletes its branch or tag. ``ignored`` says why the event starts no
    build whatever the triggers (a closed pull request, say); empty otherwise.
    """

    kind: str
    repository: str
    clone_url: str
    ref: str
    commit: str
    pr_number: int | None = None
    base_ref: str = ""
    deleted: bool = False
    ignored: str = ""

    @property
    def name(self) -> str:
        """The branch or tag a trigger's globs match: the pushed branch or tag, or a pull
        request's base branch (the branch it would change)."""
        ref = self.base_ref if self.kind == PULL_REQUEST else self.ref
        return ref.removeprefix("refs/heads/").removeprefix("refs/tags/")


def field(payload: Any, path: str, kind: type = str) -> Any:
    """The value at ``path`` (dotted: ``pull_request.head.sha``) in ``payload``, which must
    be of ``kind`` (a ``str`` non-empty; an ``int`` not a bool). Raises PayloadError naming
    the path otherwise."""
    value = payload
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise PayloadError(f"The payload has no {path}.")
        value = value[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise PayloadError(f"The payload's {path} is not {_KIND_NAMES.get(kind, kind)}.")
    if kind is str and not value:
        raise PayloadError(f"The payload's {path} is empty.")
    return value


def commit_field(payload: Any, path: str) -> str:
    """The commit at ``path``: 40 (or 64) lowercase hex digits, all zeros for a deletion."""
    value = field(payload, path)
    if not COMMIT.fullmatch(value):
        raise PayloadError(f"The payload's {path} is not a commit hash.")
    return value


def url_field(payload: Any, path: str) -> str:
    """The clone URL at ``path``: http(s), no longer than the buildable's column."""
    value = field(payload, path)
    if not value.startswith(("https://", "http://")) or len(value) > MAX_URL:
        raise PayloadError(f"The payload's {path} is not an http(s) URL of {MAX_URL} or fewer.")
    return value


def ref_field(payload: Any, path: str, prefix: str = "") -> str:
    """The ref at ``path`` with ``prefix`` added (``refs/heads/`` to a bare branch name),
    no longer than the buildable's column."""
    value = prefix + field(payload, path)
    if len(value) > MAX_REF:
        raise PayloadError(f"The payload's {path} is longer than {MAX_REF} characters.")
    return value


def path_field(payload: Any, path: str) -> str:
    """The repository's path at ``path`` (``owner/name``)."""
    value = field(payload, path)
    if len(value) > MAX_PATH:
        raise PayloadError(f"The payload's {path} is longer than {MAX_PATH} characters.")
    return value


def is_zero(commit: str) -> bool:
    """True for the all-zeros commit forges send as ``after`` when a ref is deleted."""
    return ZERO_COMMIT.fullmatch(commit) is not None


_KIND_NAMES = {str: "text", int: "a whole number", dict: "an object", bool: "true or false"}
