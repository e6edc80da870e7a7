"""The build page's list of outbound deliveries, commit statuses to the forge and
notifications to the plan's webhooks (``{% outbound_deliveries build %}``), so the builds
app's templates show them without builds importing forges."""

from django import template

from builds.models import Build
from builds.permissions import can_run
from forges.models import OutboundDelivery
from forges.redelivery import redeliverable

register = template.Library()


@register.inclusion_tag("forges/_deliveries.html", takes_context=True)
def outbound_deliveries(context: template.Context, build: Build) -> dict:
    """The build's deliveries, newest first, each marked ``redeliverable`` when the user
    may run the plan and the row may be sent again (one query, and one more for a plan
    with a run group and a user who is not staff; none for a build whose buildable no
    forge made and whose plan notifies no webhook, which has none to show: its plan's
    webhooks removed since, the REST API still lists them)."""
    if not build.buildable.forge and not build.plan.notify:
        return {"deliveries": []}
    deliveries = list(OutboundDelivery.objects.filter(build=build).order_by("-pk"))
    if not deliveries:
        return {"deliveries": []}
    request = context.get("request")
    may_redeliver = request is not None and can_run(request.user, build.plan)
    newest = {}
    for row in deliveries:
        newest.setdefault(tuple(row.stream.values()), row)
    for row in deliveries:
        stream_newest = newest[tuple(row.stream.values())]
        row.redeliverable = may_redeliver and redeliverable(row, stream_newest)
    return {"deliveries": deliveries, "build": build, "csrf_token": context.get("csrf_token")}
