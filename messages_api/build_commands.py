"""``POST /api/v1/builds/<id>/commands``: restart, pause, resume or abort a build, or rerun
one of its steps (with the steps depending on it).

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
    step = serializers.CharField(
        required=False,
        max_length=100,
        help_text="For rerun (and only for it): the key of the step to run again.",
    )

    def validate(self, data: dict) -> dict:
        rerun = data["command"] == BuildMessage.Type.RERUN
        if rerun and "step" not in data:
            raise serializers.ValidationError({"step": "rerun needs the key of the step."})
        if not rerun and "step" in data:
            raise serializers.ValidationError({"step": "only rerun takes a step."})
        return data


class BuildCommandView(ApiView):
    """Store a command for the build; the engine applies it on its next pass.

    202 with the stored message; 404 for an unknown build; 400 for an unknown command, or
    a rerun of a step the build does not have; 409 when the command cannot apply to the
    build now (e.g. pausing a paused build, rerunning a step still running).
    """

    def post(self, request: Request, pk: int) -> Response:
        build = get_object_or_404(Build, pk=pk)
        serializer = BuildCommandSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        receipt = engine.receive_message(
            build.phid, data["command"], author=request.user, step_key=data.get("step")
        )
        return Response(MessageReceiptSerializer(receipt).data, status=status.HTTP_202_ACCEPTED)
