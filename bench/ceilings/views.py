"""The minimal endpoint: validate, insert one row, enqueue one Celery task after commit."""

from django.db import transaction
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.ceilings import tasks
from bench.ceilings.models import CeilingMessage


class CeilingMessageSerializer(serializers.Serializer):
    """``{"counter": <int>, "type": <str>}``: what the task will update, and a type."""

    counter = serializers.IntegerField(min_value=1)
    type = serializers.ChoiceField(choices=["pass", "fail", "work"])


class CeilingMessageView(APIView):
    """``POST /bench/ceiling/message``: 202 ``{"id"}`` after the row is committed and the
    lock-and-update task (``?task=empty`` for the empty task) is enqueued.

    No authentication: the ceiling is what the platform costs without Harbor's work."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request: Request) -> Response:
        serializer = CeilingMessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        task = tasks.empty if request.query_params.get("task") == "empty" else tasks.lock_and_update
        with transaction.atomic():
            row = CeilingMessage.objects.create(counter=data["counter"], type=data["type"])
            transaction.on_commit(lambda: task.delay(data["counter"]))
        return Response({"id": row.pk}, status=status.HTTP_202_ACCEPTED)
