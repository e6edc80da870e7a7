"""Notifications for a plan's webhooks (``notify``, builds/plan_notify.py): which event
each build change is, the outbox row written with it, and the signed request that
delivers it.

Each is a JSON POST ``{"event", "build": <GET /api/v1/builds/<id>>, "target": <the target,
for target events>}`` with ``X-Harbor-Event`` (the event), ``X-Harbor-Delivery`` (a UUID,
the same on every attempt) and ``X-Harbor-Signature-256: sha256=<hex HMAC-SHA256 of the
body>`` keyed with the webhook's secret, a ``HARBOR_CREDENTIALS`` entry's password, token or
value (read when sending: the secret itself is never stored).
"""

import json

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from builds.models import Build, BuildPlan, BuildTarget
from forges import dispatch
from forges.models import OutboundDelivery
from forges.signatures import hmac_sha256_hex
from harbor.credentials import credential
from messages_api.shapes import TargetOutputSerializer, build_shape

B = Build.Status
T = BuildTarget.Status
# The event each complete build status is, besides ``build.completed``.
COMPLETED_EVENTS = {
    B.PASSED: "build.passed",
    B.FAILED: "build.failed",
    B.DEADLOCKED: "build.failed",
    B.ABORTED: "build.aborted",
    B.ERROR: "build.error",
}
TARGET_EVENTS = {T.WAITING: "target.waiting", T.FAILED: "target.failed"}


def events_of(
    build: Build, previous: str | None, target: BuildTarget | None, event: str | None = None
) -> list[str]:
    """The notification events of one ``build_changed``: the ``event`` it announces if it
    names one (``target.stuck``), ``target.*`` for a target's move, ``build.started`` for
    a pending build starting to run (a resume is not a start), ``build.completed`` and the
    completion's own event for a build completing; none for a build's creation or another
    move."""
    if event is not None:
        return [event]
    if target is not None:
        return [TARGET_EVENTS[target.status]] if target.status in TARGET_EVENTS else []
    if previous is None:
        return []
    if build.status == B.BUILDING and previous == B.PENDING:
        return ["build.started"]
    if build.status in COMPLETED_EVENTS:
        return ["build.completed", COMPLETED_EVENTS[build.status]]
    return []


def record_notifications(
    sender,
    build: Build,
    previous: str | None = None,
    target: BuildTarget | None = None,
    event: str | None = None,
    **kwargs,
) -> None:
    """``build_changed`` receiver: for each of the plan's webhooks that asks for the
    events of this change, write an outbox row (its body as of now) in the transaction of
    the change, and queue its delivery after the commit. No query when the change is no
    event; when no webhook asks for its events, none if the build came with its plan's
    ``notify`` (as an engine pass's does), else one."""
    events = events_of(build, previous, target, event)
    if not events:
        return
    webhooks = _notify(build)
    wanted = [(hook, e) for hook in webhooks or [] for e in events if e in hook["events"]]
    if not wanted:
        return
    shape = build_shape(build.pk)
    target_shape = TargetOutputSerializer(target).data if target is not None else None
    now = timezone.now()
    rows = [
        OutboundDelivery(
            build=build,
            kind=OutboundDelivery.Kind.NOTIFICATION,
            url=hook["url"],
            event=event,
            secret=hook["secret"],
            build_status=build.status,
            payload=_body(event, shape, target_shape),
            next_attempt_at=now,
        )
        for hook, event in wanted
    ]
    created = OutboundDelivery.objects.bulk_create(rows)
    for row in created:
        # After the commit, never inside it (see statuses.record_status).
        transaction.on_commit(lambda pk=row.pk: dispatch.deliver(pk), robust=True)


def _notify(build: Build) -> list[dict] | None:
    """The webhooks of ``build``'s plan: those loaded with the build when its plan came
    with ``notify`` (``builds.engine.rows.lock_build`` reads it with the build's row lock),
    else read now. None if the plan is gone."""
    # Only a plan already loaded: reading ``build.plan`` otherwise would load all of it.
    if Build.plan.is_cached(build) and "notify" not in build.plan.get_deferred_fields():
        return build.plan.notify
    return BuildPlan.objects.filter(pk=build.plan_id).values_list("notify", flat=True).first()


def _body(event: str, shape: dict, target_shape: dict | None) -> dict:
    body = {"event": event, "build": shape}
    if target_shape is not None:
        body["target"] = target_shape
    return body


def request(row: OutboundDelivery) -> tuple[str, dict[str, str], bytes] | str:
    """The URL, headers and signed body of notification ``row``'s request, or why it
    cannot be made (its secret is no longer in HARBOR_CREDENTIALS)."""
    key = signing_key(row.secret)
    if key is None:
        return f"secret {row.secret!r} is not in HARBOR_CREDENTIALS"
    body = json.dumps(row.payload, separators=(",", ":")).encode()
    headers = {
        "X-Harbor-Event": row.event,
        "X-Harbor-Delivery": str(row.uuid),
        "X-Harbor-Signature-256": "sha256=" + hmac_sha256_hex(key, body),
    }
    return row.url, headers, body


def signing_key(name: str) -> str | None:
    """The secret of ``HARBOR_CREDENTIALS`` entry ``name`` (its password, token or header
    value), or None if there is no such entry."""
    entry = settings.HARBOR_CREDENTIALS.get(name)
    return None if entry is None else credential(name, entry).secrets[-1]
