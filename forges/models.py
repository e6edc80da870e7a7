"""Webhook deliveries received from forges, each with the builds it started."""

from django.db import models

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


class StatusDelivery(models.Model):
    """One commit status for a forge: the outbox row a build's status move writes in its
    own transaction (``forges.statuses``), sent after the commit by ``forges.outbox``.

    The rows of one build to one forge form a stream, ordered by id. Every move of a build
    updates the build's row first, and that row lock is held until the commit, so of two
    transactions writing rows for one build the later waits for the earlier: ids follow
    the order of the moves. Sending takes the stream's rows in turn (``outbox.claim``), so
    an older status is never sent after, or while, a newer one exists: it is dropped as
    ``overtaken``. ``payload`` is the forge's JSON body, ready to post."""

    class Outcome(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        OVERTAKEN = "overtaken"
        FAILED = "failed"

    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="status_deliveries")
    forge = models.CharField(max_length=64)
    repository = models.CharField(max_length=500)
    commit = models.CharField(max_length=64)
    build_status = models.CharField(max_length=16)
    # The forge's word for it (GitHub ``success``, GitLab ``running``…).
    state = models.CharField(max_length=16)
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
    # The start of the forge's answer, or the error of the request.
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Why it was overtaken or given up.
    dropped_reason = models.TextField(blank=True)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "status deliveries"
        indexes = [
            models.Index(fields=["build", "forge"], name="status_delivery_stream_idx"),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(outcome="pending"),
                name="status_delivery_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.forge} {self.repository}@{self.commit[:12]} {self.state}"
