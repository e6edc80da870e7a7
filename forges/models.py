"""Webhook deliveries received from forges, each with the builds it started."""

import uuid

from django.db import models

from builds.egress import shown_origin
from builds.models import Build, EngineOwned


class Delivery(EngineOwned):
    """One webhook delivery of a push or a pull (merge) request, recorded in the
    transaction that starts its builds. ``(forge, delivery_id)`` is unique: the forge
    sends the same id again when it redelivers, and the second copy, however close behind
    the first, finds the first's row and starts nothing (``forges.deliveries``).
    ``ignored`` says why it started no build; written once, never updated."""

    forge = models.CharField(max_length=64)
    delivery_id = models.CharField(max_length=100)
    # The forge's name of the event (X-GitHub-Event: push, X-Gitlab-Event: Push Hook…), and
    # what Harbor read it as: push, tag or pull_request.
    event = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)
    repository = models.CharField(max_length=500)
    ref = models.CharField(max_length=255)
    commit = models.CharField(max_length=64)
    builds = models.ManyToManyField(Build, blank=True, related_name="forge_deliveries")
    ignored = models.TextField(blank=True)
    date_received = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["forge", "delivery_id"], name="unique_forge_delivery")
        ]

    def __str__(self) -> str:
        return f"{self.forge} {self.delivery_id}"


class OutboundDelivery(models.Model):
    """One commit status for a forge or one notification for a plan's webhook: the outbox
    row a build's change writes in its own transaction (``forges.statuses``,
    ``forges.notifications``), sent after the commit by ``forges.outbox``.

    The rows of one build to one destination (a forge, or a webhook's URL) form a stream,
    ordered by id. Every change of a build that writes rows holds the build's row lock until
    the commit, so of two transactions writing rows for one build the later waits for the
    earlier: ids follow the order of the changes. Sending takes the stream's rows in turn
    (``outbox.claim``), so an older row is never sent after, or while, a newer one is: a
    status (a state, of which only the last counts) is dropped as ``overtaken`` once a newer
    one exists; a notification (an event, each news) only once a newer one was delivered.
    ``payload`` is the JSON body, ready to post."""

    class Kind(models.TextChoices):
        STATUS = "status"
        NOTIFICATION = "notification"

    class Outcome(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        OVERTAKEN = "overtaken"
        FAILED = "failed"

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="outbound_deliveries")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.STATUS)
    # A status's forge (a HARBOR_FORGES name), repository and commit; blank for a notification.
    forge = models.CharField(max_length=64, blank=True)
    repository = models.CharField(max_length=500, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    # A notification's webhook URL, event and secret (a HARBOR_CREDENTIALS name, read when
    # sending, so the secret itself is never stored); blank for a status.
    url = models.CharField(max_length=2000, blank=True)
    event = models.CharField(max_length=32, blank=True)
    secret = models.CharField(max_length=200, blank=True)
    # X-Harbor-Delivery: the same on every attempt, so a receiver can drop a repeat.
    uuid = models.UUIDField(default=uuid.uuid4, editable=False)
    build_status = models.CharField(max_length=16)
    # The forge's word for it (GitHub ``success``, GitLab ``running``…); blank for a
    # notification.
    state = models.CharField(max_length=16, blank=True)
    payload = models.JSONField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When it is due: its task should send it then; the sweep queues another for a row
    # overdue by HARBOR_REPAIR_BOUND (``outbox.due_deliveries``).
    next_attempt_at = models.DateTimeField()
    # While a worker is sending it: until when its claim holds.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # The start of the answer, or the error of the request.
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Why it was overtaken or given up.
    dropped_reason = models.TextField(blank=True)
    # The row a user asked to send again, of which this is the copy (``forges.redelivery``).
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "outbound deliveries"
        indexes = [
            models.Index(fields=["build", "forge"], name="status_delivery_stream_idx"),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(outcome="pending"),
                name="status_delivery_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.NOTIFICATION:
            return f"{self.event} to {self.destination}"
        return f"{self.forge} {self.repository}@{self.commit[:12]} {self.state}"

    @property
    def destination(self) -> str:
        """Where it goes, fit to show: the forge's repository, or the webhook's scheme,
        host and port (a URL's path or query may carry a token)."""
        if self.kind == self.Kind.NOTIFICATION:
            return shown_origin(self.url)
        return f"{self.forge}: {self.repository}@{self.commit[:12]}"

    @property
    def stream(self) -> dict:
        """The filter of its stream's rows."""
        return {"build_id": self.build_id, "kind": self.kind, "forge": self.forge, "url": self.url}
