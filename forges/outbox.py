"""Sending the commit statuses the build moves wrote (``forges.statuses``): claim a row,
POST it outside every transaction, record the attempt, and decide the next.

Order. The rows of one build to one forge (a stream) are claimed in turns, under the
stream's row locks, and a row is sent only if no newer row of its stream exists and none
is being sent: GitHub keeps the last status posted for a context, so a late ``pending``
sent after a ``success`` would show the build as running for ever. An overtaken row is
recorded as such and never sent.

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
from forges.models import StatusDelivery
from forges.posting import PostResult, post_status
from forges.statuses import auth_headers, status_url

Outcome = StatusDelivery.Outcome
# Ten attempts, 10 s to 30 min apart with jitter: about an hour in all.
MAX_ATTEMPTS = 10
BACKOFF_BASE = 10.0
BACKOFF_MAX = 30 * 60.0
# The longest wait a forge's Retry-After may impose before the next attempt.
RETRY_AFTER_MAX = 60 * 60.0


@dataclass(frozen=True)
class Claim:
    """A row this worker may send now, as its ``attempt``-th attempt."""

    delivery: StatusDelivery
    attempt: int


class StreamBusy(Exception):
    """An older row of the same stream is being sent; try again in ``seconds``."""

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


def deliver(delivery_id: int) -> float | None:
    """Send status row ``delivery_id`` if it is still owed and its turn has come; return
    the seconds after which it should be tried again (a retryable failure, or an older row
    of its stream still being sent), or None when nothing more is to do now (delivered,
    given up, overtaken, sent by another worker, or not yet due)."""
    try:
        claim_ = claim(delivery_id)
    except StreamBusy as busy:
        return busy.seconds
    if claim_ is None:
        return None
    row = claim_.delivery
    forge = settings.HARBOR_FORGES.get(row.forge)
    if forge is None:
        result = PostResult(None, f"forge {row.forge!r} is not in HARBOR_FORGES", False)
    else:
        url = status_url(forge, row.repository, row.commit)
        result = post_status(url, auth_headers(forge), row.payload)
    return record_attempt(claim_, result)


@transaction.atomic
def claim(delivery_id: int, now: datetime | None = None) -> Claim | None:
    """Claim row ``delivery_id`` for one attempt, for ``lease()`` seconds, if it may be
    sent now. Drops it as overtaken when a newer row of its stream exists. None when it
    is no longer owed, overtaken, claimed by another worker, or its retry is not yet due.
    Raises StreamBusy while an older row of its stream is being sent."""
    now = now or timezone.now()
    stream = _lock_stream(delivery_id)
    delivery = next((row for row in stream if row.pk == delivery_id), None)
    if delivery is None or delivery.outcome != Outcome.PENDING or _claimed(delivery, now):
        return None
    newest = stream[-1]
    if newest.pk != delivery.pk:
        _drop_overtaken(delivery, newest)
        return None
    if delivery.attempts and delivery.next_attempt_at > now:
        return None  # an early duplicate: the scheduled retry (or the sweep) sends it
    # Only older rows can be left here (a newer one would have overtaken this one).
    busy = [row.claimed_until for row in stream if _claimed(row, now)]
    if busy:
        StatusDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=max(busy))
        raise StreamBusy((max(busy) - now).total_seconds())
    until = now + lease()
    StatusDelivery.objects.filter(pk=delivery.pk).update(
        attempts=F("attempts") + 1, claimed_until=until, next_attempt_at=until, last_attempt_at=now
    )
    delivery.attempts += 1
    return Claim(delivery, delivery.attempts)


def _lock_stream(delivery_id: int) -> list[StatusDelivery]:
    """The rows of ``delivery_id``'s stream, oldest first, locked until the transaction
    ends: claims of one stream take turns, so two workers never both decide to send."""
    key = StatusDelivery.objects.filter(pk=delivery_id).values("build_id", "forge").first()
    if key is None:
        return []
    return list(StatusDelivery.objects.select_for_update().filter(**key).order_by("pk"))


def _claimed(row: StatusDelivery, now: datetime) -> bool:
    """Whether a worker is sending ``row`` now (settling a row clears its claim)."""
    return row.claimed_until is not None and row.claimed_until > now


def _drop_overtaken(delivery: StatusDelivery, newest: StatusDelivery) -> None:
    StatusDelivery.objects.filter(pk=delivery.pk, outcome=Outcome.PENDING).update(
        outcome=Outcome.OVERTAKEN,
        claimed_until=None,
        dropped_reason=f"overtaken by status delivery {newest.pk}",
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
    recorded = StatusDelivery.objects.filter(
        pk=claim_.delivery.pk, outcome=Outcome.PENDING, attempts=claim_.attempt
    ).update(**fields)
    if recorded:
        result_name = fields.get("outcome", "retry")
        metrics.delivery_attempted("commit_status", str(result_name))
    return retry_in if recorded else None


def _why_failed(claim_: Claim, result: PostResult) -> str:
    if result.retryable:
        return f"gave up after {claim_.attempt} attempts"
    if result.status_code is not None:
        return f"refused by the forge: HTTP {result.status_code}"
    return "not sent: " + result.excerpt


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2…): 10 s doubling up
    to 30 min, times a random 0.5–1 so that statuses failed together do not come back
    together, and never less than the forge's ``Retry-After`` (up to an hour)."""
    delay = min(BACKOFF_BASE * 2 ** (attempt - 1), BACKOFF_MAX) * random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_MAX))
    return delay


def newest_waiting(delivery_id: int) -> int | None:
    """The newest undelivered row of ``delivery_id``'s stream, newer than it, or None: once
    a row is settled, the row that waited behind it can go at once."""
    key = StatusDelivery.objects.filter(pk=delivery_id).values("build_id", "forge").first()
    if key is None:
        return None
    return (
        StatusDelivery.objects.filter(**key, pk__gt=delivery_id, outcome=Outcome.PENDING)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )


@transaction.atomic
def due_deliveries(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Rows still owed whose task should have run by now, ``HARBOR_REPAIR_BOUND`` seconds
    past their ``next_attempt_at`` (its task lost, or its sender gone and its claim lapsed),
    oldest first. Each is given a new ``next_attempt_at`` of ``now``, so the next sweep
    leaves it to the task the caller queues. Rows another sweep is handling are skipped."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.HARBOR_REPAIR_BOUND)
    due = list(
        StatusDelivery.objects.select_for_update(skip_locked=True)
        .filter(outcome=Outcome.PENDING, next_attempt_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    StatusDelivery.objects.filter(pk__in=due).update(next_attempt_at=now)
    return due
