"""The REST API's views: authenticate, validate with a serializer, make one engine call,
serialize the result (DESIGN.md §4). What a message or a build does is the engine's business.
"""

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from builds import engine
from builds.models import Build, BuildTarget
from messages_api.errors import PayloadTooLarge
from messages_api.serializers import (
    BuildOutputSerializer,
    MessageReceiptSerializer,
    SendMessageSerializer,
    StartBuildSerializer,
)

# Bytes of request body accepted; a large unit report with details can pass a few MiB.
MAX_BODY_BYTES = getattr(settings, "HARBOR_API_MAX_BODY_BYTES", 16 * 1024 * 1024)


class ApiView(APIView):
    """Base of the REST views: refuses oversized bodies (413) before parsing them."""

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")


class SendMessageView(ApiView):
    """``POST /api/v1/sendmessage``: deliver a verdict or a command to a receiver PHID.

    202 ``{"id", "receiver", "type", "status": "accepted"}`` when stored; 200 with the first
    message and ``"status": "duplicate"`` for a repeated ``idempotency_key``. Errors: 400
    (validation, or a type the receiver cannot take), 404 (unknown receiver), 409 (a verdict
    that can no longer count, with the target's and build's statuses).
    """

    def post(self, request: Request) -> Response:
        serializer = SendMessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        receipt = engine.receive_message(
            data["receiver"],
            data["type"],
            author=request.user,
            unit=data.get("unit"),
            lint=data.get("lint"),
            idempotency_key=data.get("idempotency_key"),
        )
        code = status.HTTP_202_ACCEPTED if receipt.created else status.HTTP_200_OK
        return Response(MessageReceiptSerializer(receipt).data, status=code)


class BuildListView(ApiView):
    """``POST /api/v1/builds``: start a build; 201 with the build as ``GET`` shows it."""

    def post(self, request: Request) -> Response:
        serializer = StartBuildSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # One transaction, so a build that cannot start leaves no new buildable behind; the
        # engine's first update is queued on commit either way.
        with transaction.atomic():
            buildable = engine.find_or_create_buildable(**data.get("buildable", {}))
            build = engine.start_build(
                data["plan"],
                buildable,
                initiator=request.user,
                parameters=data.get("parameters") or {},
            )
        body = BuildOutputSerializer(load_build(build.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)


class BuildDetailView(ApiView):
    """``GET /api/v1/builds/<id>``: a build with its current generation's targets (404
    ``not_found`` if there is no such build). Two queries, however many targets."""

    def get(self, request: Request, pk: int) -> Response:
        return Response(BuildOutputSerializer(load_build(pk)).data)


def load_build(pk: int) -> Build:
    """The build ``pk`` with what ``BuildOutputSerializer`` reads, in two queries; raises
    ``Http404`` if there is none."""
    targets = Prefetch("targets", queryset=BuildTarget.objects.order_by("id"))
    queryset = Build.objects.select_related("plan", "buildable", "initiator").prefetch_related(
        targets
    )
    return get_object_or_404(queryset, pk=pk)
