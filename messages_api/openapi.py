"""What drf-spectacular cannot infer about the REST API, declared without touching the views:
the bearer-token scheme, each view's request and response serializers, and the error shape
(``messages_api.errors``). Imported by ``messages_api.urls`` so the extensions register."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from messages_api.serializers import (
    BuildOutputSerializer,
    MessageReceiptSerializer,
    SendMessageSerializer,
    StartBuildSerializer,
)


class ErrorSerializer(serializers.Serializer):
    """Every 4xx body: a code, an explanation, and field errors for a validation error."""

    error = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    target_status = serializers.CharField(required=False, allow_null=True)
    build_status = serializers.CharField(required=False, allow_null=True)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Error responses ``codes`` (plus 401, which every endpoint may answer) in one shape."""
    return {code: OpenApiResponse(ErrorSerializer) for code in sorted({401, *codes})}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "messages_api.authentication.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (api-…), from `manage.py createapitoken USER`.",
        }


class TargetSecretScheme(OpenApiAuthenticationExtension):
    target_class = "messages_api.authentication.TargetSecretAuthentication"
    name = "targetSecret"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Harbor-Target-Secret <secret>`: messages its own target only.",
        }


class SendMessageSchema(OpenApiViewExtension):
    target_class = "messages_api.views.SendMessageView"

    def view_replacement(self):
        class Documented(self.target_class):
            @extend_schema(
                summary="Send a message to a build target, build or buildable",
                request=SendMessageSerializer,
                responses={
                    202: MessageReceiptSerializer,
                    200: MessageReceiptSerializer,
                    **errors(400, 404, 409, 413),
                },
            )
            def post(self, request):
                return super().post(request)

        return Documented


class BuildListSchema(OpenApiViewExtension):
    target_class = "messages_api.views.BuildListView"

    def view_replacement(self):
        class Documented(self.target_class):
            @extend_schema(
                summary="Start a build of a plan",
                request=StartBuildSerializer,
                responses={201: BuildOutputSerializer, **errors(400, 413)},
            )
            def post(self, request):
                return super().post(request)

        return Documented


class BuildDetailSchema(OpenApiViewExtension):
    target_class = "messages_api.views.BuildDetailView"

    def view_replacement(self):
        class Documented(self.target_class):
            @extend_schema(
                summary="A build with its current run's targets",
                responses={200: BuildOutputSerializer, **errors(404)},
            )
            def get(self, request, pk):
                return super().get(request, pk)

        return Documented


JUNIT_PARAMETERS = [
    OpenApiParameter("receiver", str, required=True, description="The build target's PHID."),
    OpenApiParameter(
        "type",
        str,
        enum=["auto", "work"],
        description="`auto` (default): `pass` if no test failed or errored, else `fail`; "
        "`work`: partial results.",
    ),
    OpenApiParameter("idempotency_key", str, description="Makes a retried upload harmless."),
]


class JUnitReportSchema(OpenApiViewExtension):
    target_class = "messages_api.junit_views.JUnitReportView"

    def view_replacement(self):
        from messages_api.junit_views import JUnitReportSerializer

        class Documented(self.target_class):
            @extend_schema(
                summary="Send a JUnit XML report to a build target",
                parameters=JUNIT_PARAMETERS,
                request={"application/xml": OpenApiTypes.STR, "text/xml": OpenApiTypes.STR},
                responses={
                    202: JUnitReportSerializer,
                    200: JUnitReportSerializer,
                    **errors(400, 404, 409, 413, 415),
                },
            )
            def post(self, request):
                return super().post(request)

        return Documented
