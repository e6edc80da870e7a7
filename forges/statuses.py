"""Commit statuses for the forge: what each build status is called there, the request
each forge documents, and the outbox row written with the move that causes it.

GitHub and Gitea: ``POST {url}/repos/{owner}/{repo}/statuses/{sha}`` with ``state``,
``target_url``, ``description`` and ``context``. GitLab: ``POST {url}/projects/{url-encoded
path}/statuses/{sha}`` with ``state``, ``name``, ``target_url`` and ``description``.
"""

import json
import logging
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from builds.models import Build, BuildTarget
from forges import dispatch
from forges.config import Forge
from forges.models import OutboundDelivery

logger = logging.getLogger(__name__)

B = Build.Status
T = BuildTarget.Status
Kind = OutboundDelivery.Kind

GITHUB_STATES = {
    B.INACTIVE: "pending",
    B.PENDING: "pending",
    B.BUILDING: "pending",
    B.PAUSED: "pending",
    B.PASSED: "success",
    B.FAILED: "failure",
    B.DEADLOCKED: "failure",
    B.ERROR: "error",
    B.ABORTED: "error",
}
GITLAB_STATES = {
    **GITHUB_STATES,
    B.BUILDING: "running",
    B.FAILED: "failed",
    B.DEADLOCKED: "failed",
    B.ERROR: "failed",
    B.ABORTED: "canceled",
}
# GitHub caps a description at 140 characters; GitLab and Gitea take at least as many.
MAX_DESCRIPTION = 140


def forge_state(forge_type: str, build_status: str) -> str:
    """The forge's state for a build status: ``pending``/``success``/``failure``/``error``
    on GitHub and Gitea; ``pending``/``running``/``success``/``failed``/``canceled`` on
    GitLab."""
    return (GITLAB_STATES if forge_type == "gitlab" else GITHUB_STATES)[build_status]


def status_url(forge: Forge, repository: str, commit: str) -> str:
    """Where a status for ``commit`` of ``repository`` (the forge's path) is posted."""
    if forge.type == "gitlab":
        return f"{forge.url}/projects/{quote(repository, safe='')}/statuses/{commit}"
    owner, _, name = repository.partition("/")
    return f"{forge.url}/repos/{quote(owner, safe='')}/{quote(name, safe='')}/statuses/{commit}"


def request(row: OutboundDelivery) -> tuple[str, dict[str, str], bytes] | str:
    """The URL, headers and body of status ``row``'s request, or why it cannot be made
    (its forge is no longer configured)."""
    forge = settings.HARBOR_FORGES.get(row.forge)
    if forge is None:
        return f"forge {row.forge!r} is not in HARBOR_FORGES"
    body = json.dumps(row.payload).encode()
    return status_url(forge, row.repository, row.commit), auth_headers(forge), body


def auth_headers(forge: Forge) -> dict[str, str]:
    """The forge's authentication header, with its token."""
    if forge.type == "gitlab":
        return {"PRIVATE-TOKEN": forge.token}
    scheme = "Bearer" if forge.type == "github" else "token"
    return {"Authorization": f"{scheme} {forge.token}"}


def payload(forge_type: str, state: str, context: str, target_url: str, description: str) -> dict:
    """The JSON body of one status, in the forge's documented fields."""
    body = {"state": state, "target_url": target_url, "description": description}
    if forge_type == "gitlab":
        return {**body, "name": context}
    return {**body, "context": context}


def describe(build: Build) -> str:
    """A short description of ``build`` as it is now: ``3 of 4 steps passed``, ``waiting
    for external-ci``, ``0 of 2 steps passed; lint failed``… (one query, of the current
    run's targets)."""
    status = build.status
    if status == B.PENDING:
        return "waiting to start"
    targets = BuildTarget.objects.filter(
        build_id=build.pk, generation=build.generation, superseded_by=""
    )
    by_status: dict[str, list[str]] = {}
    for key, target_status in targets.order_by("pk").values_list("step_key", "status"):
        by_status.setdefault(target_status, []).append(key)
    passed = f"{len(by_status.get(T.PASSED, []))} of {len(build.plan_snapshot)} steps passed"
    waiting = by_status.get(T.WAITING)
    failed = by_status.get(T.FAILED)
    text = {
        B.PASSED: passed,
        B.FAILED: f"{passed}; {', '.join(failed)} failed" if failed else passed,
        B.DEADLOCKED: f"{passed}; no step can run",
        B.ABORTED: f"aborted; {passed}",
        B.ERROR: "Harbor met an error; see the build's page",
    }.get(status) or (f"waiting for {', '.join(waiting)}" if waiting else passed)
    text = f"paused; {text}" if status == B.PAUSED else text
    return text[: MAX_DESCRIPTION - 1] + "…" if len(text) > MAX_DESCRIPTION else text


def record_status(
    sender, build: Build, target: BuildTarget | None = None, event: str | None = None, **kwargs
) -> None:
    """``build_changed`` receiver: write the outbox row of ``build``'s status now for its
    buildable's forge, in the transaction of the change, and queue its delivery after the
    commit. Nothing for a buildable no configured forge made, for a target failing, or when
    the status reads as the stream's previous one (GitLab refuses a repeated state)."""
    # A failing target leaves the build's status as it was: the build's own move that
    # follows (the pass the failure requests) sends the status.
    # An announcement (``event``: a target stuck) changes no status.
    if not settings.HARBOR_FORGES or event or (target is not None and target.status == T.FAILED):
        return
    # An engine pass's build comes with these fields of its buildable and plan
    # (``builds.engine.rows.lock_build``); any other build loads them here.
    buildable = build.buildable
    forge = settings.HARBOR_FORGES.get(buildable.forge) if buildable.forge else None
    if buildable.forge and forge is None:
        # This process's HARBOR_FORGES lacks a forge that the web's had: say so, or the
        # commit's status would stay where it was with nothing in the logs.
        logger.warning(
            "build %s: no status for forge %r, which is not in this process's HARBOR_FORGES"
            " (every Harbor process needs the same value)",
            build.pk,
            buildable.forge,
        )
    if forge is None or not buildable.commit:
        return
    state = forge_state(forge.type, build.status)
    description = describe(build)
    body = payload(forge.type, state, f"harbor/{build.plan.name}", _page(build), description)
    if _repeats_previous(build, forge, body):
        return
    row = OutboundDelivery.objects.create(
        build=build,
        forge=forge.name,
        repository=buildable.forge_repository,
        commit=buildable.commit,
        build_status=build.status,
        state=state,
        payload=body,
        # Due now: the task queued after the commit sends it; if none has once this is
        # HARBOR_REPAIR_BOUND old, the sweep takes the task for lost (outbox.due_deliveries).
        next_attempt_at=timezone.now(),
    )
    # After the commit, never inside it: a task sent now could run before the row is
    # visible. If the broker is down the commit stands, and the sweep sends the row.
    transaction.on_commit(lambda: dispatch.deliver(row.pk), robust=True)


def _repeats_previous(build: Build, forge: Forge, body: dict) -> bool:
    previous = (
        OutboundDelivery.objects.filter(build=build, kind=Kind.STATUS, forge=forge.name)
        .order_by("-pk")
        .values_list("payload", flat=True)
        .first()
    )
    if previous is None:
        return False
    if forge.type == "gitlab":
        return previous["state"] == body["state"]
    return previous == body


def _page(build: Build) -> str:
    return settings.HARBOR_BASE_URL + build.get_absolute_url()
