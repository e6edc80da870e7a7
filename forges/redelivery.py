"""Sending an outbox row again when a user asks (the build page's "Redeliver" button,
``POST /api/v1/deliveries/<id>/redeliver``): a copy of the row, at the end of its stream,
sent by the same outbox as any other (``forges.outbox``).

A copy rather than the row itself: the row keeps the record of its attempts, and a copy is
the newest of its stream, so the ordering guard lets it go. Only a settled row is sent
again (a pending one already has its task or its retry on the way), and of statuses only
the newest of its stream: an older status sent again would hide the build's status now.
A notification's copy keeps its event, body and ``X-Harbor-Delivery``, so a receiver that
keeps delivery ids sees it is the same event again.
"""

from django.db import transaction
from django.utils import timezone

from forges import dispatch, outbox
from forges.models import OutboundDelivery

Kind = OutboundDelivery.Kind
COPIED_FIELDS = (
    "build_id", "kind", "forge", "repository", "commit", "url", "event", "secret", "uuid",
    "build_status", "state", "payload",
)  # fmt: skip


class NotRedeliverable(Exception):
    """The row cannot be sent again now; the message says why (the API answers 409)."""


@transaction.atomic
def redeliver(delivery_id: int) -> OutboundDelivery:
    """Write a copy of settled row ``delivery_id`` to be sent now, and queue it after the
    commit; return the copy. Raises OutboundDelivery.DoesNotExist for an unknown row,
    NotRedeliverable for a row still pending or a status a newer one has replaced."""
    # Under the stream's row locks, as claims are: no row of it is claimed, and no copy
    # is written, while this decides.
    stream = outbox.lock_stream(delivery_id)
    row = next((item for item in stream if item.pk == delivery_id), None)
    if row is None:
        raise OutboundDelivery.DoesNotExist(f"no outbound delivery {delivery_id}")
    refusal = _refusal(row, stream[-1])
    if refusal:
        raise NotRedeliverable(refusal)
    copy = OutboundDelivery.objects.create(
        **{field: getattr(row, field) for field in COPIED_FIELDS},
        redelivery_of=row,
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: dispatch.deliver(copy.pk), robust=True)
    return copy


def redeliverable(row: OutboundDelivery, newest: OutboundDelivery) -> bool:
    """Whether ``row`` may be sent again, ``newest`` being the newest row of its stream."""
    return _refusal(row, newest) == ""


def _refusal(row: OutboundDelivery, newest: OutboundDelivery) -> str:
    if row.outcome == OutboundDelivery.Outcome.PENDING:
        return (
            f"Delivery {row.pk} is still being delivered (attempt {row.attempts} so far); "
            "its next attempt is on the way."
        )
    if row.kind == Kind.STATUS and newest.pk != row.pk:
        return (
            f"Delivery {row.pk} is an older status than delivery {newest.pk}; sent again it "
            f"would hide the build's status now. Redeliver delivery {newest.pk} instead."
        )
    return ""
