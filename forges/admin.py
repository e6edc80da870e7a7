"""Forge deliveries in the admin: shown, never added, changed or deleted (a delivery is
the record of what a webhook started)."""

from django.contrib import admin

from builds.admin import EngineOwnedAdmin
from forges.models import Delivery, OutboundDelivery


@admin.register(Delivery)
class DeliveryAdmin(EngineOwnedAdmin):
    list_display = ("date_received", "forge", "delivery_id", "event", "repository", "ref")
    list_filter = ("forge", "kind")
    search_fields = ("delivery_id", "repository", "commit")
    readonly_fields = ("builds",)


@admin.register(OutboundDelivery)
class OutboundDeliveryAdmin(EngineOwnedAdmin):
    list_display = (
        "date_created", "build", "kind", "destination", "state", "event", "outcome", "attempts"
    )  # fmt: skip
    list_filter = ("kind", "forge", "outcome", "state", "event")
    search_fields = ("repository", "commit", "url")
