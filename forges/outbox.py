"""Sending what the build changes wrote to the outbox, commit statuses
(``forges.statuses``) and notifications (``forges.notifications``): claim a row, POST it
outside every transaction, record the attempt, and decide the next.

Order. The rows of one build to one destination (a stream) are claimed in turns, under
the stream's row locks, and no row is sent while another of its stream is being sent, nor
after a newer one was. A status is a state of which the forge keeps the last one posted
(GitHub: a late ``pending`` sent after a ``success`` would show the build as running for
ever), so it is sent only if no newer status of its stream exists. A notification is an
event, each one news, so it is sent in its turn: it waits for the first attempt of every
older one, and is dropped only once a newer one was delivered (an older one failing and
waiting for its retry does not hold the newer ones back). An overtaken row is recorded
as such and never sent.

Loss. A row is written with the move, so once the move commits the status is owed. Its
task is queued after the commit; a row whose task never came (a killed worker, a lost
broker message) is found by ``due_deliveries`` once its ``next_attempt_at`` is older than
``HARBOR_REPAIR_BOUND``. The attempt is recorded after the request, never before, so a
worker dying mid-request leaves the row to be sent again once its claim lapses.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from builds import metrics
from forges import notifications, statuses
from forges.models import OutboundDelivery
from forges.posting import PostResult, post

Outcome = OutboundDelivery.Outcome
Kind = OutboundDelivery.Kind
# How each kind of row becomes a request: (url, headers, body bytes), or why it cannot.
REQUESTS = {Kind.STATUS: statuses.request, Kind.NOTIFICATION: notifications.request}
# Each kind's name in the deliveries metric (builds.metrics.delivery_attempted).
DELIVERY_METRIC_KIND = {Kind.STATUS: "commit_status", Kind.NOTIFICATION: "notification"}
# Ten attempts, 10 s to 30 min apart with jitter: about an hour in all.
MAX_ATTEMPTS = 10
BACKOFF_BASE = 10.0
BACKOFF_MAX = 30 * 60.0
# The longest wait a destination's Retry-After may impose before the next attempt.
RETRY_AFTER_MAX = 60 * 60.0
# How soon a notification asks again for its turn while an older one awaits its first try.
TURN_WAIT = 2.0


@dataclass(frozen=True)
class Claim:
    """A row this worker may send now, as its ``attempt``-th attempt."""

    delivery: OutboundDelivery
    attempt: int


class StreamBusy(Exception):
    """An older row of the same stream is being sent; try again in ``seconds``."""

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


def deliver(delivery_id: int) -> float | None:
    """Send outbox row ``delivery_id`` if it is still owed and its turn has come; return
    the seconds after which it should be tried again (a retryable failure, or an older row
    of its stream still being sent), or None when nothing more is to do now (delivered,
    given up, overtaken, sent by another worker, or not yet due)."""
    try:
        claim_ = claim(delivery_id)
    except StreamBusy as busy:
        return busy.seconds
    if claim_ is None:
        return None
    request = REQUESTS[claim_.delivery.kind](claim_.delivery)
    if isinstance(request, str):  # its forge or secret is gone from the settings
        result = PostResult(None, request, retryable=False)
    else:
        result = post(*request)
    return record_attempt(claim_, result)


@transaction.atomic
def claim(delivery_id: int, now: datetime | None = None) -> Claim | None:
    """Claim row ``delivery_id`` for one attempt, for ``lease()`` seconds, if it may be
    sent now. Drops it as overtaken when a newer row of its stream overtook it (a status:
    any newer one; a notification: a newer one delivered). None when it is no longer
    owed, overtaken, claimed by another worker, or its retry is not yet due. Raises
    StreamBusy while another row of its stream is being sent, or, for a notification,
    while an older one awaits its first attempt."""
    now = now or timezone.now()
    stream = lock_stream(delivery_id)
    delivery = next((row for row in stream if row.pk == delivery_id), None)
    if delivery is None or delivery.outcome != Outcome.PENDING or _claimed(delivery, now):
        return None
    overtaker = _overtaker(delivery, stream)
    if overtaker is not None:
        _drop_overtaken(delivery, overtaker)
        return None
    if delivery.attempts and delivery.next_attempt_at > now:
        return None  # an early duplicate: the scheduled retry (or the sweep) sends it
    busy = _busy_until(delivery, stream, now)
    if busy is not None:
        OutboundDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=busy)
        raise StreamBusy((busy - now).total_seconds())
    until = now + lease()
    OutboundDelivery.objects.filter(pk=delivery.pk).update(
        attempts=F("attempts") + 1, claimed_until=until, next_attempt_at=until, last_attempt_at=now
    )
    delivery.attempts += 1
    return Claim(delivery, delivery.attempts)


def lock_stream(delivery_id: int) -> list[OutboundDelivery]:
    """The rows of ``delivery_id``'s stream, oldest first, locked until the transaction
    ends: claims of one stream take turns, so two workers never both decide to send."""
    row = OutboundDelivery.objects.filter(pk=delivery_id).first()
    if row is None:
        return []
    return list(OutboundDelivery.objects.select_for_update().filter(**row.stream).order_by("pk"))


def _overtaker(
    delivery: OutboundDelivery, stream: list[OutboundDelivery]
) -> OutboundDelivery | None:
    """The newer row of the stream that makes ``delivery`` pointless to send, or None."""
    newer = [row for row in stream if row.pk > delivery.pk]
    if delivery.kind == Kind.NOTIFICATION:
        newer = [row for row in newer if row.outcome == Outcome.DELIVERED]
    return newer[-1] if newer else None


def _busy_until(
    delivery: OutboundDelivery, stream: list[OutboundDelivery], now: datetime
) -> datetime | None:
    """Until when ``delivery`` must wait for its turn, or None if it may go now: another
    row of its stream is being sent (for a status, only an older one can be left), or, for
    a notification, an older one was never tried (its task is on the way, or the sweep
    brings it), so that events go out in the order they happened."""
    waits = [row.claimed_until for row in stream if _claimed(row, now)]
    if delivery.kind == Kind.NOTIFICATION and any(
        row.pk < delivery.pk and row.outcome == Outcome.PENDING and not row.attempts
        for row in stream
    ):
        waits.append(now + timedelta(seconds=TURN_WAIT))
    return max(waits) if waits else None


def _claimed(row: OutboundDelivery, now: datetime) -> bool:
    """Whether a worker is sending ``row`` now (settling a row clears its claim)."""
    return row.claimed_until is not None and row.claimed_until > now


def _drop_overtaken(delivery: OutboundDelivery, newer: OutboundDelivery) -> None:
    OutboundDelivery.objects.filter(pk=delivery.pk, outcome=Outcome.PENDING).update(
        outcome=Outcome.OVERTAKEN,
        claimed_until=None,
        dropped_reason=f"overtaken by {newer.kind} delivery {newer.pk}",
    )


def lease() -> timedelta:
    """How long a claim holds: longer than any request can take (its connect and read
    timeouts, with room), so a claim lapses only when its worker is gone."""
    return timedelta(seconds=3 * settings.HARBOR_STATUS_TIMEOUT + 30)


def record_attempt(claim_: Claim, result: PostResult) -> float | None:
    """Record ``result`` on the claimed row (unless a later claim took it over, its lease
    having lapsed) and return the seconds until the next attempt, or None."""
    now = timezone.now()
    fields = {
        "claimed_until": None,
        "last_status_code": result.status_code,
        "last_error": "" if result.delivered else result.excerpt,
    }
    retry_in = None
    if result.delivered:
        fields |= {"outcome": Outcome.DELIVERED, "delivered_at": now}
    elif result.retryable and claim_.attempt < MAX_ATTEMPTS:
        retry_in = backoff(claim_.attempt, result.retry_after)
        fields["next_attempt_at"] = now + timedelta(seconds=retry_in)
    else:
        fields |= {"outcome": Outcome.FAILED, "dropped_reason": _why_failed(claim_, result)}
    recorded = OutboundDelivery.objects.filter(
        pk=claim_.delivery.pk, outcome=Outcome.PENDING, attempts=claim_.attempt
    ).update(**fields)
    if recorded:
        result_name = fields.get("outcome", "retry")
        metrics.delivery_attempted(DELIVERY_METRIC_KIND[claim_.delivery.kind], str(result_name))
    return retry_in if recorded else None


def _why_failed(claim_: Claim, result: PostResult) -> str:
    if result.retryable:
        return f"gave up after {claim_.attempt} attempts"
    if result.status_code is not None:
        return f"refused by the destination: HTTP {result.status_code}"
    return "not sent: " + result.excerpt


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2…): 10 s doubling up
    to 30 min, times a random 0.5–1 so that rows failed together do not come back
    together, and never less than the destination's ``Retry-After`` (up to an hour)."""
    delay = min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_MAX) * random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_MAX))
    return delay


def next_waiting(delivery_id: int) -> int | None:
    """The row of ``delivery_id``'s stream that waited behind it and can go once it is
    settled, or None: the newest undelivered newer status (the older ones are overtaken),
    the oldest undelivered newer notification never tried (each goes in its turn)."""
    row = OutboundDelivery.objects.filter(pk=delivery_id).first()
    if row is None:
        return None
    waiting = OutboundDelivery.objects.filter(
        **row.stream, pk__gt=delivery_id, outcome=Outcome.PENDING
    )
    if row.kind == Kind.NOTIFICATION:
        waiting = waiting.filter(attempts=0).order_by("pk")
    else:
        waiting = waiting.order_by("-pk")
    return waiting.values_list("pk", flat=True).first()


@transaction.atomic
def due_deliveries(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Rows still owed whose task should have run by now, ``HARBOR_REPAIR_BOUND`` seconds
    past their ``next_attempt_at`` (its task lost, or its sender gone and its claim lapsed),
    oldest first. Each is given a new ``next_attempt_at`` of ``now``, so the next sweep
    leaves it to the task the caller queues. Rows another sweep is handling are skipped."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.HARBOR_REPAIR_BOUND)
    due = list(
        OutboundDelivery.objects.select_for_update(skip_locked=True)
        .filter(outcome=Outcome.PENDING, next_attempt_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    OutboundDelivery.objects.filter(pk__in=due).update(next_attempt_at=now)
    return due
