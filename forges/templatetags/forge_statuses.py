"""The build page's list of commit statuses sent to the forge (``{% status_deliveries
build %}``), so the builds app's templates show them without builds importing forges."""

from django import template

from builds.models import Build
from forges.models import OutboundDelivery

register = template.Library()


@register.inclusion_tag("forges/_status_deliveries.html")
def status_deliveries(build: Build) -> dict:
    """The build's status deliveries, newest first (one query, none for a build whose
    buildable no forge's webhook made)."""
    if not build.buildable.forge:
        return {"deliveries": []}
    deliveries = OutboundDelivery.objects.filter(build=build, kind="status").order_by("-pk")
    return {"deliveries": list(deliveries), "build": build}
