"""``/api/v1/plans``: read, create and change build plans as YAML, without a shell.

A plan's YAML is the format ``manage.py importplan`` reads (docs/design.md §4.2), checked the
same way with every problem reported at once (400 ``validation_error``, all of them under
``fields.yaml``; nothing stored). The YAML is sent either as the body with ``Content-Type:
application/yaml`` (or ``text/yaml``), or as JSON ``{"yaml": "<text>"}``. ``?validate=true``
checks it and stores nothing. Each change is kept as a version (``builds.plan_versions``).

Reading is open to every signed-in user, as for builds; the YAML of another's plan is shown
with secret-looking values masked unless the reader may change plans. Creating and changing
plans takes ``permissions.can_change_plans`` (staff, or the ``HARBOR_PLAN_ADMINS`` group).
"""

from typing import Any

from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from builds import permissions
from builds.models import BuildPlan, BuildPlanVersion
from builds.numbers import ascii_int
from builds.plan_versions import (
    PlanExists,
    latest_version,
    mask_yaml,
    plan_as_yaml,
    save_plan_version,
    validate_plan_text,
)
from builds.plans import PlanError
from messages_api.errors import InvalidJson, error_response
from messages_api.parsers import StrictJSONParser, max_body_bytes, query_values, read_capped
from messages_api.serializers import RefusesUnknownFields
from messages_api.views import ApiView


class YamlParser(BaseParser):
    """A YAML body, taken as the plan's text: ``{"yaml": <the body as UTF-8 text>}``."""

    media_type = "application/yaml"

    def parse(self, stream: Any, media_type: str | None = None, parser_context=None) -> Any:
        raw = read_capped(stream, max_body_bytes()) if stream is not None else b""
        try:
            return {"yaml": raw.decode("utf-8")}
        except UnicodeDecodeError as error:
            raise InvalidJson(
                f"The YAML is not UTF-8 (invalid byte at offset {error.start})."
            ) from error


class TextYamlParser(YamlParser):
    media_type = "text/yaml"


class PlanInputSerializer(RefusesUnknownFields, serializers.Serializer):
    yaml = serializers.CharField(
        trim_whitespace=False, help_text="The plan as `manage.py importplan` reads it."
    )


class PlanQuerySerializer(serializers.Serializer):
    validate = serializers.BooleanField(
        required=False, default=False, help_text="Check the plan only; store nothing."
    )


class PlanVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    author = serializers.CharField(source="author.username", allow_null=True, default=None)
    date_created = serializers.DateTimeField()


class PlanSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    phid = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.CharField()
    version = PlanVersionSerializer(allow_null=True, help_text="None if never versioned.")


class PlanOutputSerializer(PlanSummarySerializer):
    yaml = serializers.CharField(help_text="Masked unless the reader may change plans.")


class PlanCheckSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    name = serializers.CharField()


class PlanView(ApiView):
    """What the plan views share: the body as YAML or JSON, and the answers."""

    parser_classes = [StrictJSONParser, YamlParser, TextYamlParser]

    def plan_text(self, request: Request) -> tuple[str, bool]:
        """The YAML text sent and whether ``?validate`` asks only for a check."""
        query = PlanQuerySerializer(data=query_values(request))
        query.is_valid(raise_exception=True)
        body = PlanInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return body.validated_data["yaml"], query.validated_data["validate"]

    def check_only(self, text: str, plan: BuildPlan | None = None) -> Response:
        try:
            data = validate_plan_text(text, plan)
        except PlanError as refused:
            raise ValidationError({"yaml": refused.problems}) from refused
        return Response(PlanCheckSerializer({"valid": True, "name": data["name"]}).data)

    def save(self, request: Request, text: str, **options) -> BuildPlan:
        try:
            plan, _ = save_plan_version(text, author=request.user, **options)
        except PlanError as refused:
            raise ValidationError({"yaml": refused.problems}) from refused
        return plan

    def answer(self, request: Request, plan: BuildPlan, code: int = 200) -> Response:
        latest = latest_version(plan)
        text = latest.yaml if latest else plan_as_yaml(plan)
        if not permissions.can_change_plans(request.user):
            text = mask_yaml(text)
        body = {**plan_summary(plan, latest), "yaml": text}
        return Response(PlanOutputSerializer(body).data, status=code)


def plan_summary(plan: BuildPlan, version: BuildPlanVersion | None) -> dict:
    """What ``PlanSummarySerializer`` reads of ``plan`` and its latest ``version``."""
    names = ("id", "phid", "name", "description", "status")
    return {**{name: getattr(plan, name) for name in names}, "version": version}


class PlanListView(PlanView):
    """``GET /api/v1/plans``: every plan by name with its latest version. ``POST``: create a
    plan from YAML (201; 409 ``conflict`` if one of its name exists; 403 unless the user
    may change plans), or with ``?validate=true`` check it (200) and store nothing."""

    def get(self, request: Request) -> Response:
        plans = BuildPlan.objects.order_by("name").prefetch_related("versions__author")
        rows = [plan_summary(plan, _newest(plan)) for plan in plans]
        return Response(PlanSummarySerializer(rows, many=True).data)

    def post(self, request: Request) -> Response:
        text, validate_only = self.plan_text(request)
        if validate_only:
            return self.check_only(text)
        permissions.check_can_change_plans(request.user)
        try:
            plan = self.save(request, text, create=True)
        except PlanExists as exists:
            detail = f'Plan "{exists}" exists already; change it with PUT /api/v1/plans/{exists}.'
            return error_response("conflict", detail, status.HTTP_409_CONFLICT)
        return self.answer(request, plan, status.HTTP_201_CREATED)


def _newest(plan: BuildPlan):
    """The newest of the prefetched versions (no query)."""
    return max(plan.versions.all(), key=lambda version: version.number, default=None)


class PlanDetailView(PlanView):
    """``GET /api/v1/plans/<id or name>``: the plan with its YAML. ``PUT``: replace it with
    new YAML naming the same plan, kept as its next version (403 unless the user may change
    plans), or with ``?validate=true`` only check it. 404 for an unknown plan. An all-digit
    reference is an id."""

    def get(self, request: Request, plan: str) -> Response:
        return self.answer(request, find_plan(plan))

    def put(self, request: Request, plan: str) -> Response:
        found = find_plan(plan)
        text, validate_only = self.plan_text(request)
        if validate_only:
            return self.check_only(text, found)
        permissions.check_can_change_plans(request.user)
        return self.answer(request, self.save(request, text, plan=found))


def find_plan(reference: str) -> BuildPlan:
    """The plan with id ``reference`` (all digits) or that name; Http404 if none."""
    plan_id = ascii_int(reference)
    if plan_id is not None:
        return get_object_or_404(BuildPlan, pk=plan_id)
    return get_object_or_404(BuildPlan, name=reference)
