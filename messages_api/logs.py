"""Reading build logs through the REST API: a byte range as JSON, or the whole log as text.

- ``GET /api/v1/logs/<id>?offset=&length=`` → ``{"id", "target", "build", "source",
  "log_type", "is_live", "size", "offset", "end", "text"}``: bytes ``[offset, end)`` of the
  log's UTF-8 text (``length`` default 65536, at most 1048576; ``offset`` default 0). The
  range is narrowed to whole characters, so ``end`` is where to read on from; a client
  following a live log asks again from ``end`` until ``is_live`` is false and ``end ==
  size``.
- ``GET /api/v1/logs/<id>/download`` → the whole log, ``text/plain; charset=utf-8``, as an
  attachment, streamed chunk by chunk.

Both take an API token (``Authorization: Bearer``) or a signed-in browser session, so the
build page can link to the download. Reading is open to every signed-in user (as the build
API); a target callback secret does not let its holder read logs.
"""

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from builds import logs
from builds.models import BuildLog
from messages_api.authentication import BearerTokenAuthentication
from messages_api.parsers import query_values

DEFAULT_LENGTH = 64 * 1024
MAX_LENGTH = 1024 * 1024


class IsActiveUser(BasePermission):
    """A signed-in, active user (not a target secret holder)."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, User) and request.user.is_active


class LogRangeSerializer(serializers.Serializer):
    """The query of a byte-range read."""

    offset = serializers.IntegerField(
        min_value=0, default=0, help_text="First byte to read, from 0."
    )
    length = serializers.IntegerField(
        min_value=1,
        max_value=MAX_LENGTH,
        default=DEFAULT_LENGTH,
        help_text="Bytes to read at most; the range is narrowed to whole characters.",
    )


class LogRangeOutputSerializer(serializers.Serializer):
    """A byte range of a log: bytes ``[offset, end)`` of its ``size`` bytes of UTF-8 text."""

    id = serializers.IntegerField()
    target = serializers.CharField(help_text="The build target's PHID.")
    build = serializers.IntegerField()
    source = serializers.CharField()
    log_type = serializers.CharField()
    is_live = serializers.BooleanField(help_text="True while a step may still append to it.")
    size = serializers.IntegerField(help_text="Bytes of text the log holds now.")
    offset = serializers.IntegerField()
    end = serializers.IntegerField(help_text="Where to read on from.")
    text = serializers.CharField()


class LogView(APIView):
    """Common ground of the log views: who may read, and which log."""

    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [IsActiveUser]

    def get_log(self, pk: int) -> BuildLog:
        """The log ``pk`` with its target; raises ``Http404`` if there is none."""
        return get_object_or_404(BuildLog.objects.select_related("target"), pk=pk)


class LogRangeView(LogView):
    """``GET /api/v1/logs/<id>?offset=&length=``: a byte range of a log (module docstring)."""

    def get(self, request: Request, pk: int) -> Response:
        query = LogRangeSerializer(data=query_values(request))
        query.is_valid(raise_exception=True)
        log = self.get_log(pk)
        part = logs.read_range(log, query.validated_data["offset"], query.validated_data["length"])
        return Response(
            LogRangeOutputSerializer(
                {
                    "id": log.pk,
                    "target": log.target.phid,
                    "build": log.target.build_id,
                    "source": log.source,
                    "log_type": log.log_type,
                    "is_live": log.is_live,
                    "size": part.size,
                    "offset": part.offset,
                    "end": part.end,
                    "text": part.text,
                }
            ).data
        )


class LogDownloadView(LogView):
    """``GET /api/v1/logs/<id>/download``: the whole log as a text attachment."""

    def get(self, request: Request, pk: int) -> StreamingHttpResponse:
        log = self.get_log(pk)
        response = StreamingHttpResponse(
            (text.encode() for text in logs.iter_text(log)),
            content_type="text/plain; charset=utf-8",
        )
        name = f"build-{log.target.build_id}-target-{log.target_id}-log-{log.pk}.txt"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
