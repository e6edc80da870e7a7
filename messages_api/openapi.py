"""What drf-spectacular cannot infer about the REST API, declared without touching the views:
the authentication schemes, and for each operation its summary and description, request and
response serializers, query parameters, examples, and the errors it may answer in the error
shape of ``messages_api.errors`` (with their codes). ``tests/openapi/test_description.py``
fails for an operation described less fully. Imported by ``messages_api.urls`` so the
extensions register."""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
    OpenApiViewExtension,
)
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers

from forges.api import DeliveryListSerializer, DeliveryOutputSerializer, RedeliverSerializer
from messages_api.build_commands import BuildCommandSerializer
from messages_api.junit_views import JUnitOptionsSerializer, JUnitReportSerializer
from messages_api.logs import LogRangeOutputSerializer, LogRangeSerializer
from messages_api.outage import RETRY_AFTER_SECONDS
from messages_api.serializers import (
    BuildFilterSerializer,
    BuildPageSerializer,
    MessageOutputSerializer,
    MessageReceiptSerializer,
    SendMessageSerializer,
    StartBuildSerializer,
    TargetDetailSerializer,
)
from messages_api.shapes import BuildOutputSerializer


class ErrorSerializer(serializers.Serializer):
    """Every error body: a code, an explanation, and field errors for a validation error."""

    error = serializers.CharField(help_text="A code a program can act on (see each status).")
    detail = serializers.CharField(help_text="What is wrong, for a person to read.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="400 validation_error only: messages by field path, e.g. `unit[0].name`.",
    )
    target_status = serializers.CharField(required=False, allow_null=True, help_text="409 only.")
    build_status = serializers.CharField(required=False, allow_null=True, help_text="409 only.")

    class Meta:
        ref_name = "Error"


# Each error status: its codes, and an example body.
ERRORS = {
    400: (
        "`validation_error` (with `fields`), `invalid_json` (not UTF-8, malformed, NaN, nested "
        "too deeply), or `invalid_message` (a type the receiver cannot take). Nothing stored.",
        {
            "error": "validation_error",
            "detail": "Invalid request: type: 'done' is not a valid message type; …",
            "fields": {"type": ["'done' is not a valid message type; …"]},
        },
    ),
    401: (
        "`not_authenticated` (no credentials) or `authentication_failed` (unknown or revoked "
        "token, malformed header).",
        {
            "error": "authentication_failed",
            "detail": "The API token is unknown or has been revoked.",
        },
    ),
    403: (
        "`permission_denied`: the author may not do this (a target secret used anywhere but "
        "its own target, or a build the user may not run).",
        {"error": "permission_denied", "detail": "You do not have permission to do this."},
    ),
    404: (
        "`not_found`: no such object (for a message: no target, build or buildable has the "
        "receiver PHID).",
        {"error": "not_found", "detail": "Not found."},
    ),
    409: (
        "`conflict`: the message can no longer count (its target is complete, of an older run, "
        "or never waits; a command that cannot apply now), with the statuses that decided it.",
        {
            "error": "conflict",
            "detail": "Build target PHID-HMBT-… is already passed; the message was not applied.",
            "target_status": "passed",
            "build_status": "passed",
        },
    ),
    413: (
        "`too_large`: the body, or its count of unit results or lint messages, is over the limit.",
        {"error": "too_large", "detail": "The request body is too large."},
    ),
    415: (
        "`unsupported_media_type`: a Content-Type this operation does not read.",
        {"error": "unsupported_media_type", "detail": 'Unsupported media type "text/plain".'},
    ),
    503: (
        "`unavailable`: Harbor's database or broker is down and nothing was stored. Wait "
        "`Retry-After` seconds and send the same request again, with the same idempotency key.",
        {
            "error": "unavailable",
            "detail": "Harbor's database is unavailable; nothing was stored. Try again in 5 s "
            "with the same idempotency key.",
        },
    ),
}
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    response=[503],
    description=f"Seconds to wait before sending the request again ({RETRY_AFTER_SECONDS}).",
)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Error responses for ``codes``, plus 401, 403 and 503, which every operation may answer."""
    responses = {}
    for code in sorted({401, 403, 503, *codes}):
        description, example = ERRORS[code]
        responses[code] = OpenApiResponse(
            ErrorSerializer,
            description,
            [OpenApiExample(example["error"], example, response_only=True, status_codes=[code])],
        )
    return responses


def describe(view: str, **operations) -> type[OpenApiViewExtension]:
    """Register the description of the view at dotted path ``view``: each keyword names a
    method (``get``, ``post``) and holds its ``extend_schema(...)``. The view itself is left
    as it is; the schema describes a subclass of it."""

    def view_replacement(self):
        documented = type(self.target_class.__name__, (self.target_class,), {})
        return extend_schema_view(**operations)(documented)

    name = view.rsplit(".", 1)[1] + "Schema"
    return type(
        name, (OpenApiViewExtension,), {"target_class": view, "view_replacement": view_replacement}
    )


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


class RefusesUnknownFieldsSchema(OpenApiSerializerExtension):
    """A serializer that refuses undeclared keys is described so: ``additionalProperties:
    false``, which clients and fuzzers read as "send these keys and no others"."""

    target_class = "messages_api.serializers.RefusesUnknownFields"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        return {**schema, "additionalProperties": False}


RECEIPT_EXAMPLES = [
    OpenApiExample(
        "accepted",
        {
            "id": 41,
            "receiver": "PHID-HMBT-3xq2v7ak6m4bqdzr5hwe",
            "type": "pass",
            "status": "accepted",
        },
        response_only=True,
        status_codes=[202],
    ),
    OpenApiExample(
        "duplicate",
        {
            "id": 41,
            "receiver": "PHID-HMBT-3xq2v7ak6m4bqdzr5hwe",
            "type": "pass",
            "status": "duplicate",
        },
        response_only=True,
        status_codes=[200],
    ),
]

describe(
    "messages_api.views.SendMessageView",
    post=extend_schema(
        operation_id="sendmessage",
        summary="Send a message to a build target, build or buildable",
        description=(
            "A verdict (`pass`, `fail`, `work`) with unit results and lint messages for a build "
            "target, or a command (`restart`, `pause`, `resume`, `abort`) for a build or every "
            "build of a buildable. 202 when stored; the same `idempotency_key` again answers 200 "
            "with the first message and `status: duplicate`, and stores nothing. Takes an API "
            "token, or the target's own callback secret (`Harbor-Target-Secret`)."
        ),
        request=SendMessageSerializer,
        responses={
            202: OpenApiResponse(MessageReceiptSerializer, "Stored; the engine applies it."),
            200: OpenApiResponse(MessageReceiptSerializer, "A repeated idempotency key."),
            **errors(400, 404, 409, 413, 415),
        },
        parameters=[RETRY_AFTER],
        examples=[
            OpenApiExample(
                "a failed run with its unit results and a lint message",
                {
                    "receiver": "PHID-HMBT-3xq2v7ak6m4bqdzr5hwe",
                    "type": "fail",
                    "idempotency_key": "github-8812345-test",
                    "unit": [
                        {
                            "name": "test_login",
                            "namespace": "auth",
                            "result": "pass",
                            "duration": 0.12,
                        },
                        {
                            "name": "test_logout",
                            "namespace": "auth",
                            "result": "fail",
                            "duration": 0.3,
                            "details": "AssertionError: still signed in",
                        },
                    ],
                    "lint": [
                        {
                            "name": "unused import",
                            "code": "F401",
                            "severity": "warning",
                            "path": "auth/views.py",
                            "line": 3,
                        }
                    ],
                },
                request_only=True,
            ),
            *RECEIPT_EXAMPLES,
        ],
    ),
)

BUILD_EXAMPLE = {
    "id": 7,
    "phid": "PHID-HMBD-k2c4m6q8s0u2w4y6a8c0",
    "url": "https://harbor.example.com/builds/7/",
    "plan": "external-ci",
    "buildable": {
        "id": 3,
        "phid": "PHID-HMBB-a1b2c3d4e5f6g7h8i9j0",
        "repository": "https://git.example.com/app.git",
        "ref": "main",
        "commit": "4f2a9c1",
    },
    "status": "building",
    "generation": 1,
    "initiator": "ci-bot",
    "date_created": "2025-05-01T10:00:00Z",
    "date_modified": "2025-05-01T10:00:02Z",
}

describe(
    "messages_api.views.BuildListView",
    get=extend_schema(
        operation_id="builds_list",
        summary="List builds",
        description="Builds, newest first, 50 a page, filtered by status, plan and buildable. "
        "A page past the last answers 404.",
        parameters=[BuildFilterSerializer, RETRY_AFTER],
        responses={
            200: OpenApiResponse(
                BuildPageSerializer,
                "A page of builds.",
                [
                    OpenApiExample(
                        "one page",
                        {"count": 1, "page": 1, "pages": 1, "results": [BUILD_EXAMPLE]},
                        response_only=True,
                    )
                ],
            ),
            **errors(400, 404),
        },
    ),
    post=extend_schema(
        operation_id="builds_create",
        summary="Start a build of a plan",
        description="Starts the plan (name or PHID) on the buildable (repository, ref, commit; "
        "found or created) with the build parameters, and answers the new build as "
        "`GET /api/v1/builds/{id}` shows it. 403 unless the user may run the plan.",
        request=StartBuildSerializer,
        parameters=[RETRY_AFTER],
        responses={201: BuildOutputSerializer, **errors(400, 413, 415)},
        examples=[
            OpenApiExample(
                "a commit of a repository",
                {
                    "plan": "external-ci",
                    "buildable": {
                        "repository": "https://git.example.com/app.git",
                        "ref": "main",
                        "commit": "4f2a9c1",
                    },
                    "parameters": {"suite": "smoke"},
                },
                request_only=True,
            ),
            OpenApiExample(
                "started",
                {**BUILD_EXAMPLE, "status": "pending", "targets": []},
                response_only=True,
                status_codes=[201],
            ),
        ],
    ),
)

describe(
    "messages_api.views.BuildDetailView",
    get=extend_schema(
        operation_id="builds_retrieve",
        summary="A build with its current run's targets",
        description="The build, its status and generation (run), and the targets of its "
        "current run with their statuses and dates.",
        parameters=[RETRY_AFTER],
        responses={
            200: OpenApiResponse(
                BuildOutputSerializer,
                "The build.",
                [
                    OpenApiExample(
                        "a build waiting for its CI",
                        {
                            **BUILD_EXAMPLE,
                            "targets": [
                                {
                                    "id": 12,
                                    "phid": "PHID-HMBT-3xq2v7ak6m4bqdzr5hwe",
                                    "name": "Run the external CI",
                                    "step": "external-ci",
                                    "status": "waiting",
                                    "generation": 1,
                                    "attempt": 1,
                                    "failure": "",
                                    "superseded_by": "",
                                    "date_started": "2025-05-01T10:00:01Z",
                                    "date_completed": None,
                                }
                            ],
                        },
                        response_only=True,
                    )
                ],
            ),
            **errors(404),
        },
    ),
)

describe(
    "messages_api.build_commands.BuildCommandView",
    post=extend_schema(
        operation_id="builds_command",
        summary="Restart, pause, resume or abort a build, or rerun one of its steps",
        description="Stores the command; the engine applies it on its next pass, in the order "
        "received. 409 when it cannot apply to the build now (pausing a paused build, "
        "restarting a plan that is not restartable). `rerun` takes `step`, a step key: that "
        "step and every step depending on it, directly or not, run again as new attempts "
        "in the current run; the other steps keep their results, and a passed or failed "
        "build becomes `building` again. 400 for a step the build does not have; 409 while "
        "the build is paused or the step (or a step depending on it) is still running.",
        request=BuildCommandSerializer,
        parameters=[RETRY_AFTER],
        responses={202: MessageReceiptSerializer, **errors(400, 403, 404, 409, 413, 415)},
        examples=[
            OpenApiExample("abort", {"command": "abort"}, request_only=True),
            OpenApiExample("rerun", {"command": "rerun", "step": "deploy"}, request_only=True),
        ],
    ),
)

describe(
    "messages_api.views.MessageDetailView",
    get=extend_schema(
        operation_id="messages_retrieve",
        summary="A message and what it decided",
        description="A stored message: whether the engine has consumed it and the outcome "
        "(e.g. `target passed`, or why it had no effect). A target secret reads only the "
        "messages sent to its own target.",
        parameters=[RETRY_AFTER],
        responses={
            200: OpenApiResponse(
                MessageOutputSerializer,
                "The message.",
                [
                    OpenApiExample(
                        "consumed",
                        {
                            "id": 41,
                            "receiver": "PHID-HMBT-3xq2v7ak6m4bqdzr5hwe",
                            "type": "pass",
                            "build": 7,
                            "target": 12,
                            "author": "ci-bot",
                            "idempotency_key": "github-8812345-test",
                            "consumed": True,
                            "outcome": "target passed",
                            "date_created": "2025-05-01T10:03:00Z",
                            "date_consumed": "2025-05-01T10:03:00Z",
                        },
                        response_only=True,
                    )
                ],
            ),
            **errors(404),
        },
    ),
)

describe(
    "messages_api.views.TargetDetailView",
    get=extend_schema(
        operation_id="targets_retrieve",
        summary="A build target with its results",
        description="A build target with its unit results and lint messages, in the order "
        "received, and the list of its logs (read them with `GET /api/v1/logs/{id}`).",
        parameters=[RETRY_AFTER],
        responses={200: TargetDetailSerializer, **errors(404)},
    ),
)

describe(
    "messages_api.logs.LogRangeView",
    get=extend_schema(
        operation_id="logs_retrieve",
        summary="A byte range of a build log",
        description="Bytes `[offset, end)` of the log's UTF-8 text, narrowed to whole "
        "characters. To follow a live log, ask again from `end` until `is_live` is false and "
        "`end` equals `size`. A target secret cannot read logs.",
        parameters=[LogRangeSerializer, RETRY_AFTER],
        responses={
            200: OpenApiResponse(
                LogRangeOutputSerializer,
                "The range.",
                [
                    OpenApiExample(
                        "the start of a live log",
                        {
                            "id": 30,
                            "target": "PHID-HMBT-3xq2v7ak6m4bqdzr5hwe",
                            "build": 7,
                            "source": "command",
                            "log_type": "output",
                            "is_live": True,
                            "size": 2048,
                            "offset": 0,
                            "end": 2048,
                            "text": "collected 12 items\n…",
                        },
                        response_only=True,
                    )
                ],
            ),
            **errors(400, 404),
        },
    ),
)

describe(
    "messages_api.logs.LogDownloadView",
    get=extend_schema(
        operation_id="logs_download",
        summary="A whole build log as text",
        description="The whole log as a `text/plain; charset=utf-8` attachment, streamed. "
        "A target secret cannot read logs.",
        parameters=[RETRY_AFTER],
        responses={
            (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, "The log's text."),
            **errors(404),
        },
    ),
)

describe(
    "messages_api.junit_views.JUnitReportView",
    post=extend_schema(
        operation_id="junit_create",
        summary="Send a JUnit XML report to a build target",
        description="The report becomes one message with a unit result per test case: `pass` "
        "when no test failed or errored, else `fail` (`type=auto`), or `work` (`type=work`). "
        "Send the XML as the body, or as a multipart `file` field with the options as fields.",
        parameters=[JUnitOptionsSerializer, RETRY_AFTER],
        request={
            "application/xml": OpenApiRequest(
                OpenApiTypes.STR,
                examples=[
                    OpenApiExample(
                        "a pytest report",
                        '<testsuites><testsuite name="pytest" tests="1">'
                        '<testcase classname="tests.test_auth" name="test_login" time="0.12"/>'
                        "</testsuite></testsuites>",
                    )
                ],
            ),
            "text/xml": OpenApiTypes.STR,
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            },
        },
        responses={
            202: JUnitReportSerializer,
            200: OpenApiResponse(JUnitReportSerializer, "A repeated idempotency key."),
            **errors(400, 404, 409, 413, 415),
        },
        examples=[
            OpenApiExample(
                "accepted",
                {
                    "id": 42,
                    "receiver": "PHID-HMBT-3xq2v7ak6m4bqdzr5hwe",
                    "type": "fail",
                    "status": "accepted",
                    "tests": {"total": 5, "pass": 2, "fail": 1, "broken": 1, "skip": 1},
                },
                response_only=True,
                status_codes=[202],
            )
        ],
    ),
)


# How one operation's answer leads to the next (OpenAPI links): a client, or a stateful
# fuzzer, starts a build, reads it once the workers have made its targets, and messages a
# target. drf-spectacular has no way to declare links, so a postprocessing hook adds them.
# (source operation, status) -> {link name: link object}
LINKS = {
    ("builds_create", "201"): {
        "ReadTheBuild": {
            "operationId": "builds_retrieve",
            "parameters": {"id": "$response.body#/id"},
            "description": "The build, with its targets once the workers have made them.",
        },
        "CommandTheBuild": {
            "operationId": "builds_command",
            "parameters": {"id": "$response.body#/id"},
            "description": "Abort, pause, resume or restart the build.",
        },
    },
    ("builds_retrieve", "200"): {
        "MessageItsFirstTarget": {
            "operationId": "sendmessage",
            "requestBody": {"receiver": "$response.body#/targets/0/phid"},
            "description": "Report a verdict to the build's first target.",
        },
        "SendJUnitToItsFirstTarget": {
            "operationId": "junit_create",
            "parameters": {"receiver": "$response.body#/targets/0/phid"},
            "description": "Report JUnit results to the build's first target.",
        },
        "ReadItsFirstTarget": {
            "operationId": "targets_retrieve",
            "parameters": {"id": "$response.body#/targets/0/id"},
            "description": "The first target, with its results and logs.",
        },
    },
    ("sendmessage", "202"): {
        "ReadTheMessage": {
            "operationId": "messages_retrieve",
            "parameters": {"id": "$response.body#/id"},
            "description": "The message as stored.",
        },
    },
    ("targets_retrieve", "200"): {
        "ReadItsFirstLog": {
            "operationId": "logs_retrieve",
            "parameters": {"id": "$response.body#/logs/0/id"},
            "description": "The first byte range of the target's first log.",
        },
    },
}


def add_links(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: put ``LINKS`` into the schema ``result`` (the
    OpenAPI document as a dict), under each source operation's response. Raises KeyError
    if a link names an operation or response the schema lacks (a test would then fail)."""
    operations = {
        operation["operationId"]: operation
        for path in result["paths"].values()
        for operation in path.values()
    }
    known = set(operations)
    for (source, status_code), links in LINKS.items():
        for link in links.values():
            if link["operationId"] not in known:
                raise KeyError(f"link to unknown operation {link['operationId']!r}")
        operations[source]["responses"][status_code]["links"] = links
    return result


DELIVERY_EXAMPLE = {
    "id": 12,
    "kind": "notification",
    "destination": "https://chat.example.com",
    "event": "build.failed",
    "state": "",
    "build_status": "failed",
    "delivery": "5f0c6a7e-2b1d-4c39-9a57-0e8f3d2c4b61",
    "outcome": "failed",
    "attempts": 10,
    "last_status_code": 503,
    "last_attempt_at": "2025-05-01T11:02:13Z",
    "response_excerpt": "Service Unavailable",
    "delivered_at": None,
    "dropped_reason": "gave up after 10 attempts",
    "redelivery_of": None,
    "date_created": "2025-05-01T10:04:41Z",
}

describe(
    "forges.api.BuildDeliveryListView",
    get=extend_schema(
        operation_id="builds_deliveries_list",
        summary="A build's commit statuses and notifications",
        description="Every commit status sent (or owed) to the buildable's forge and every "
        "notification to the plan's webhooks, oldest first: where it goes, the event or "
        "state, its outcome (`pending`, `delivered`, `overtaken` by a newer one, `failed`), "
        "the attempts made, and the last answer's status code, time and first characters.",
        parameters=[RETRY_AFTER],
        responses={
            200: OpenApiResponse(
                DeliveryListSerializer,
                "The build's deliveries.",
                [OpenApiExample("one", {"deliveries": [DELIVERY_EXAMPLE]}, response_only=True)],
            ),
            **errors(404),
        },
    ),
)

describe(
    "forges.api.RedeliverView",
    post=extend_schema(
        operation_id="deliveries_redeliver",
        summary="Send a delivery again",
        description="Writes a copy of a settled delivery (delivered, overtaken or failed) and "
        "sends it now, with retries, as a new delivery that names the first in "
        "`redelivery_of`; a notification keeps its body and `X-Harbor-Delivery`. 409 for a "
        "delivery still pending (its next attempt is on the way) or a status that a newer "
        "one replaced (sent again, it would hide the build's status now). 403 unless the "
        "user may run the build's plan.",
        request=RedeliverSerializer,
        parameters=[RETRY_AFTER],
        responses={
            202: OpenApiResponse(DeliveryOutputSerializer, "The new delivery, on its way."),
            **errors(400, 404, 409, 413, 415),
        },
        examples=[
            OpenApiExample("no fields", {}, request_only=True),
            OpenApiExample(
                "on its way",
                {
                    **DELIVERY_EXAMPLE,
                    "id": 19,
                    "outcome": "pending",
                    "attempts": 0,
                    "last_status_code": None,
                    "last_attempt_at": None,
                    "response_excerpt": "",
                    "dropped_reason": "",
                    "redelivery_of": 12,
                },
                response_only=True,
                status_codes=[202],
            ),
        ],
    ),
)
