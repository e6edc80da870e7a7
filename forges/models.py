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
