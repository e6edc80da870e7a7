"""``POST /api/v1/junit``: send a JUnit XML report to a build target as one message.

The report is the raw request body (``Content-Type: application/xml`` or ``text/xml``) or a
multipart upload's ``file`` field; ``receiver`` (the target's PHID), ``type`` and
``idempotency_key`` come as query parameters (or multipart fields). The message is ``pass``
when no test failed or errored, ``fail`` otherwise, or ``work`` when ``type=work`` (partial
results while the run goes on). Same authentication, engine call and error shapes as
``POST /api/v1/sendmessage``.
"""

from django.conf import settings
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from builds import engine, junit
from messages_api.errors import PayloadTooLarge
from messages_api.parsers import load_body, query_values
from messages_api.serializers import MessageReceiptSerializer, UnitResultSerializer


def max_report_bytes() -> int:
    """Largest report accepted, in bytes (``HARBOR_JUNIT_MAX_BYTES``)."""
    return settings.HARBOR_JUNIT_MAX_BYTES


def max_upload_bytes() -> int:
    """Largest request body accepted: the report, and a little multipart framing."""
    return max_report_bytes() + 64 * 1024


class RawXmlParser(BaseParser):
    """Hands the XML body over as bytes; the JUnit reader parses it safely itself."""

    media_type = "application/xml"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read(max_report_bytes() + 1) if stream is not None else b""


class TextXmlParser(RawXmlParser):
    media_type = "text/xml"


class JUnitOptionsSerializer(serializers.Serializer):
    """The report's options: the receiving build target, and ``type`` ``auto`` (``pass`` or
    ``fail`` from the results, the default) or ``work``."""

    receiver = serializers.CharField(max_length=64)
    type = serializers.ChoiceField(["auto", "work"], default="auto")
    idempotency_key = serializers.CharField(max_length=200, required=False)


class JUnitReportSerializer(serializers.Serializer):
    """A receipt for a report: the stored message and the count of each unit result."""

    id = serializers.IntegerField()
    receiver = serializers.CharField()
    type = serializers.CharField()
    status = serializers.CharField()
    tests = serializers.DictField(child=serializers.IntegerField())


class JUnitReportView(APIView):
    """202 with the message (``"status": "accepted"``) and the test counts; 200 for a
    repeated ``idempotency_key``. Errors: 400 (bad options, unreadable report), 404 (unknown
    receiver), 409 (the target can no longer take a verdict), 413 (report too large)."""

    parser_classes = [RawXmlParser, TextXmlParser, MultiPartParser]

    def initial(self, request: Request, *args, **kwargs) -> None:
        # After authentication: read the body as the JSON views do, so a chunked one (no
        # Content-Length) is read too, capped on the bytes that arrive (413).
        super().initial(request, *args, **kwargs)
        if request.method == "POST":
            load_body(request._request, max_upload_bytes())

    def post(self, request: Request) -> Response:
        options = JUnitOptionsSerializer(data=self._options(request))
        options.is_valid(raise_exception=True)
        report = self._read_report(request)
        units = UnitResultSerializer(data=report.units, many=True)
        units.is_valid(raise_exception=True)
        data = options.validated_data
        message_type = report.verdict() if data["type"] == "auto" else "work"
        receipt = engine.receive_message(
            data["receiver"],
            message_type,
            author=request.user,
            unit=[dict(unit) for unit in units.validated_data],
            idempotency_key=data.get("idempotency_key"),
        )
        body = {**MessageReceiptSerializer(receipt).data, "tests": report.counts}
        code = status.HTTP_202_ACCEPTED if receipt.created else status.HTTP_200_OK
        return Response(body, status=code)

    def _options(self, request: Request) -> dict:
        options = query_values(request)
        if hasattr(request.data, "getlist"):  # multipart fields
            options.update({k: v for k, v in request.data.items() if k != "file"})
        return options

    def _read_report(self, request: Request) -> junit.Report:
        data = request.data
        if isinstance(data, bytes):
            document = data
        else:
            upload = request.FILES.get("file")
            if upload is None:
                raise serializers.ValidationError(
                    {"file": ["Send the report as the body (application/xml) or a file field."]}
                )
            if upload.size > max_report_bytes():
                raise PayloadTooLarge(
                    f"The JUnit report is larger than {max_report_bytes()} bytes."
                )
            document = upload.read()
        if len(document) > max_report_bytes():
            raise PayloadTooLarge(f"The JUnit report is larger than {max_report_bytes()} bytes.")
        try:
            return junit.parse(document, max_report_bytes())
        except junit.JUnitError as error:
            raise serializers.ValidationError({"report": [str(error)]}) from error
