"""The REST API's view of a build's outbound deliveries (commit statuses and
notifications): ``GET /api/v1/builds/<id>/deliveries`` lists them, ``POST
/api/v1/deliveries/<id>/redeliver`` sends one again (``forges.redelivery``). Routed by
``messages_api.urls``; described in ``messages_api.openapi``."""

from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from builds import permissions
from builds.models import Build
from forges.models import OutboundDelivery
from forges.redelivery import NotRedeliverable, redeliver
from messages_api.errors import error_response
from messages_api.serializers import RefusesUnknownFields
from messages_api.views import ApiView


class DeliveryOutputSerializer(serializers.Serializer):
    """One outbound delivery. ``destination`` is the forge's repository and commit, or the
    webhook's scheme, host and port (never its path or query, which may hold a token)."""

    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="`status` (to the forge) or `notification`.")
    destination = serializers.CharField()
    event = serializers.CharField(help_text="A notification's event; '' for a status.")
    state = serializers.CharField(help_text="A status's state in the forge's words; ''.")
    build_status = serializers.CharField(help_text="The build's status when it was written.")
    delivery = serializers.UUIDField(source="uuid", help_text="X-Harbor-Delivery.")
    outcome = serializers.CharField(help_text="pending, delivered, overtaken or failed.")
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    response_excerpt = serializers.CharField(
        source="last_error", help_text="The start of the last answer or error, if not a 2xx."
    )
    delivered_at = serializers.DateTimeField(allow_null=True)
    dropped_reason = serializers.CharField(help_text="Why it was overtaken or given up.")
    redelivery_of = serializers.IntegerField(source="redelivery_of_id", allow_null=True)
    date_created = serializers.DateTimeField()


class DeliveryListSerializer(serializers.Serializer):
    deliveries = DeliveryOutputSerializer(many=True)


class RedeliverSerializer(RefusesUnknownFields, serializers.Serializer):
    """A redelivery takes no fields: ``{}`` or an empty body."""


class BuildDeliveryListView(ApiView):
    """The build's outbound deliveries, oldest first (404 for an unknown build). One query
    besides the build's."""

    def get(self, request: Request, pk: int) -> Response:
        build = get_object_or_404(Build, pk=pk)
        rows = OutboundDelivery.objects.filter(build=build).order_by("pk")
        return Response(DeliveryListSerializer({"deliveries": rows}).data)


class RedeliverView(ApiView):
    """Send a settled delivery again, as a new delivery (202 with it); 403 unless the user
    may run the build's plan; 404 for an unknown delivery; 409 for one still pending or a
    status a newer one replaced."""

    def post(self, request: Request, pk: int) -> Response:
        row = get_object_or_404(OutboundDelivery.objects.select_related("build__plan"), pk=pk)
        RedeliverSerializer(data=request.data or {}).is_valid(raise_exception=True)
        permissions.check_can_run(request.user, row.build.plan)
        try:
            copy = redeliver(row.pk)
        except NotRedeliverable as refused:
            return error_response("conflict", str(refused), status.HTTP_409_CONFLICT)
        return Response(DeliveryOutputSerializer(copy).data, status=status.HTTP_202_ACCEPTED)
