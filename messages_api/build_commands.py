"""``POST /api/v1/builds/<id>/commands``: restart, pause, resume or abort a build.

The same engine call as a command sent through ``sendmessage`` to the build's PHID, so both
routes share the can-apply rules (docs/harbormaster.md §3) and the permission check.
"""

from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from builds import engine
from builds.models import Build, BuildMessage
from messages_api.serializers import MessageReceiptSerializer, RefusesUnknownFields
from messages_api.views import ApiView


class BuildCommandSerializer(RefusesUnknownFields, serializers.Serializer):
    command = serializers.ChoiceField(sorted(BuildMessage.COMMANDS))


class BuildCommandView(ApiView):
    """Store a command for the build; the engine applies it on its next pass.

    202 with the stored message; 404 for an unknown build; 400 for an unknown command; 409
    when the command cannot apply to the build now (e.g. pausing a paused build).
    """

    def post(self, request: Request, pk: int) -> Response:
        build = get_object_or_404(Build, pk=pk)
        serializer = BuildCommandSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        receipt = engine.receive_message(
            build.phid, serializer.validated_data["command"], author=request.user
        )
        return Response(MessageReceiptSerializer(receipt).data, status=status.HTTP_202_ACCEPTED)
