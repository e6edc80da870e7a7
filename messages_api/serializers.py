"""Validation of REST input and the shape of REST output.

Input is checked strictly, more strictly than Harbormaster (docs/harbormaster.md §2.3): a message's
``type`` must be a known type, unit results and lint severities must be documented values, and
Harbormaster's type rules apply (strings must be JSON strings; ``line``/``char`` JSON
integers; ``duration`` a JSON number, never a numeric string; an optional key present with
``null`` is refused). Unknown keys are refused (``RefusesUnknownFields``), where Harbormaster
drops them. Everything is validated before anything is written.
"""

import copy
import difflib
import math
from typing import Any

from django.conf import settings
from django.db.models import Q
from rest_framework import serializers
from rest_framework.fields import empty

from builds.approvals import MAX_VALUE_LENGTH
from builds.models import (
    Build,
    BuildMessage,
    BuildPlan,
    LintMessage,
    UnitResult,
)
from builds.variables import parameter_name_problem
from messages_api.shapes import BuildSummarySerializer, TargetOutputSerializer

UNIT_FORMATS = ("text", "remarkup")
MAX_INT32 = 2**31 - 1  # line and char are integer columns


def _json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class StrictCharField(serializers.CharField):
    """A string that must arrive as a JSON string (DRF's CharField would turn 3 into "3")."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"Expected a string, got {_json_type(data)}.")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: not a string such as "3", not a boolean, not a float such as 3.0."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError(f"Expected an integer, got {_json_type(data)}.")
        return super().to_internal_value(data)


class StrictNumberField(serializers.FloatField):
    """A finite JSON number (integer or float), not a numeric string and not a boolean.

    Python's ``json`` reads a number such as ``1e400`` as infinity; it is refused, as
    infinity cannot be shown or serialized back to JSON.
    """

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise serializers.ValidationError(f"Expected a number, got {_json_type(data)}.")
        try:
            value = super().to_internal_value(data)
        except OverflowError as error:  # an integer too large for a float
            raise serializers.ValidationError("The number is too large.") from error
        if not math.isfinite(value):
            raise serializers.ValidationError("Expected a finite number; this one is too large.")
        return value


class StrictChoiceField(serializers.ChoiceField):
    """One of ``choices``, given as a JSON string; the error lists what is accepted."""

    def __init__(self, choices: Any, what: str, **kwargs: Any) -> None:
        self.what = what
        super().__init__(choices, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or data not in self.choices:
            accepted = ", ".join(str(choice) for choice in self.choices)
            raise serializers.ValidationError(
                f"{data!r} is not a valid {self.what}; expected one of: {accepted}."
                if isinstance(data, str)
                else f"Expected a {self.what} string, got {_json_type(data)}."
            )
        return data


class FiniteJSONObjectField(serializers.DictField):
    """A JSON object stored as it came (a unit result's ``coverage``). Every number in it
    must be finite: Python reads ``1e999`` as infinity, which PostgreSQL's json cannot hold
    (the insert would fail after validation). Walked without recursion."""

    def to_internal_value(self, data: Any) -> dict:
        value = super().to_internal_value(data)
        pending: list[tuple[Any, str]] = [(item, str(key)) for key, item in value.items()]
        while pending:
            item, where = pending.pop()
            if isinstance(item, float) and not math.isfinite(item):
                raise serializers.ValidationError(
                    f"The number at {where} is too large to be finite."
                )
            if isinstance(item, dict):
                pending += [(child, f"{where}.{key}") for key, child in item.items()]
            elif isinstance(item, list):
                pending += [(child, f"{where}[{i}]") for i, child in enumerate(item)]
        return value


class RefusesUnknownFields:
    """Serializer mixin for input: a key the serializer does not declare is a validation error
    that names it (with the nearest declared name), not silently dropped. A misspelt
    ``idempotency_key`` dropped would let a retry be stored twice; a misspelt ``unit``, the
    results be lost while the sender is told its message was accepted.

    Given input, the serializer builds only the declared fields that the input has, must have
    or have a default: DRF copies every field it builds for each instance, nested serializers
    whole, and an optional field without a default that JSON input lacks validates to
    nothing. A ``sendmessage`` without results then never copies the unit and lint
    serializers. Form input (a ``QueryDict``) is another matter: there DRF gives an absent
    boolean or list field an empty value, so a form-parsed serializer must not use this
    mixin."""

    def get_fields(self) -> dict:
        data = getattr(self, "initial_data", None)
        if not isinstance(data, dict):
            return super().get_fields()
        return {
            name: copy.deepcopy(field)
            for name, field in self._declared_fields.items()
            if name in data or field.required or field.default is not empty
        }

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, dict):
            unknown = [key for key in data if key not in self._declared_fields]
            if unknown:
                raise serializers.ValidationError(
                    {str(key): [self._unknown_field(str(key))] for key in unknown}
                )
        return super().to_internal_value(data)

    def _unknown_field(self, key: str) -> str:
        declared = list(self._declared_fields)
        nearest = difflib.get_close_matches(key, declared, n=1)
        hint = f" (did you mean '{nearest[0]}'?)" if nearest else ""
        return f"Unknown field{hint}; expected one of: {', '.join(declared)}."


class UnitResultSerializer(RefusesUnknownFields, serializers.Serializer):
    """One unit result of a message (Harbormaster's unit message, docs/harbormaster.md §2.3).

    Only keys present in the input appear in ``validated_data``; the engine fills defaults.
    """

    name = StrictCharField()
    result = StrictChoiceField(UnitResult.Result.values, what="unit result")
    namespace = StrictCharField(required=False, allow_blank=True)
    engine = StrictCharField(required=False, allow_blank=True, max_length=255)
    duration = StrictNumberField(required=False, min_value=0)
    path = StrictCharField(required=False, allow_blank=True)
    details = StrictCharField(required=False, allow_blank=True)
    format = StrictChoiceField(UNIT_FORMATS, what="unit details format", required=False)
    coverage = FiniteJSONObjectField(required=False)


class LintMessageSerializer(RefusesUnknownFields, serializers.Serializer):
    """One lint message of a message (Harbormaster's lint message, docs/harbormaster.md §2.3)."""

    name = StrictCharField(max_length=255)
    code = StrictCharField(max_length=128)
    severity = StrictChoiceField(LintMessage.Severity.values, what="lint severity")
    path = StrictCharField()
    line = StrictIntegerField(required=False, min_value=0, max_value=MAX_INT32)
    char = StrictIntegerField(required=False, min_value=0, max_value=MAX_INT32)
    description = StrictCharField(required=False, allow_blank=True)


class SendMessageSerializer(RefusesUnknownFields, serializers.Serializer):
    """``POST /api/v1/sendmessage``: a verdict or a command for a receiver PHID.

    ``unit``, ``lint`` and ``idempotency_key`` may be omitted or null. Whether the receiver
    exists and can take this type of message is the engine's decision (404/400/409).
    """

    receiver = StrictCharField(max_length=64)
    type = StrictChoiceField(BuildMessage.Type.values, what="message type")
    # The list may be null, its items may not: ``many=True`` would pass ``allow_null`` on to
    # the item serializer too (DRF ≥ 3.15), letting ``[null]`` through to the engine.
    unit = serializers.ListSerializer(child=UnitResultSerializer(), required=False, allow_null=True)
    lint = serializers.ListSerializer(
        child=LintMessageSerializer(), required=False, allow_null=True
    )
    idempotency_key = StrictCharField(max_length=200, required=False, allow_null=True)
    # Beyond Harbormaster: the values deciding an approval step's target, by field name.
    fields = serializers.DictField(
        child=StrictCharField(allow_blank=True, max_length=MAX_VALUE_LENGTH),
        required=False,
        allow_null=True,
        help_text="Only to an approval step's target, with pass (approve) or fail (decline): "
        "the values of its fields by name. A missing required field (to approve), an option "
        "not offered or an unknown field: 400; someone outside the step's approvers: 403.",
    )

    # (field, setting holding its limit, what its items are called)
    COUNT_LIMITS = (
        ("unit", "HARBOR_API_MAX_UNIT_RESULTS", "unit results"),
        ("lint", "HARBOR_API_MAX_LINT_MESSAGES", "lint messages"),
    )

    def to_internal_value(self, data: Any) -> dict:
        """Refuse too many unit results or lint messages before validating any of them
        (validating 50,000 items costs seconds); the limits are settings."""
        if isinstance(data, dict):
            errors = {}
            for field, setting, noun in self.COUNT_LIMITS:
                items, limit = data.get(field), getattr(settings, setting)
                if isinstance(items, list) and len(items) > limit:
                    errors[field] = [
                        f"At most {limit} {noun} per message, got {len(items)}; "
                        "send the rest in earlier 'work' messages."
                    ]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class MessageReceiptSerializer(serializers.Serializer):
    """The answer to a message: the stored message (the first one, for a duplicate key)."""

    id = serializers.IntegerField(source="message.id")
    receiver = serializers.CharField(source="message.receiver_phid")
    type = serializers.CharField(source="message.type")
    status = serializers.SerializerMethodField()

    def get_status(self, receipt: Any) -> str:
        return "accepted" if receipt.created else "duplicate"


class BuildableInputSerializer(RefusesUnknownFields, serializers.Serializer):
    """What to build: a repository and a ref and/or commit (all optional, as for
    ``manage.py build``)."""

    repository = StrictCharField(required=False, allow_blank=True, max_length=500, default="")
    ref = StrictCharField(required=False, allow_blank=True, max_length=255, default="")
    commit = StrictCharField(required=False, allow_blank=True, max_length=64, default="")


class StartBuildSerializer(RefusesUnknownFields, serializers.Serializer):
    """``POST /api/v1/builds``: start a plan (by name or PHID) on a buildable (omitted: the
    empty one).

    ``validated_data["plan"]`` is the active ``BuildPlan``; an unknown or disabled plan is a
    validation error, found before anything is written.
    """

    plan = StrictCharField(max_length=200)
    # Omitted: the empty buildable (no repository, ref or commit), as the README documents.
    buildable = BuildableInputSerializer(
        default=lambda: {"repository": "", "ref": "", "commit": ""}
    )
    parameters = serializers.DictField(child=StrictCharField(allow_blank=True), required=False)

    def validate_plan(self, value: str) -> BuildPlan:
        plan = BuildPlan.objects.filter(Q(name=value) | Q(phid=value)).first()
        if plan is None:
            raise serializers.ValidationError(f"No build plan is named {value!r} or has that PHID.")
        if plan.status != BuildPlan.Status.ACTIVE:
            raise serializers.ValidationError(
                f"Build plan {plan.name!r} is disabled; enable it to start builds."
            )
        return plan

    def validate_parameters(self, value: dict[str, str]) -> dict[str, str]:
        problem = parameter_name_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class BuildPageSerializer(serializers.Serializer):
    """A page of ``GET /api/v1/builds``: how many builds match, this page's number (from 1),
    how many pages there are, and this page's builds, newest first."""

    count = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    results = BuildSummarySerializer(many=True)


class BuildFilterSerializer(serializers.Serializer):
    """The query of ``GET /api/v1/builds``: ``status`` (one or more, comma-separated),
    ``plan`` (name or PHID), ``buildable`` (PHID or id), ``page`` (from 1)."""

    status = serializers.CharField(
        required=False,
        help_text="Only builds in these statuses, comma-separated: "
        + ", ".join(Build.Status.values),
    )
    plan = serializers.CharField(
        required=False, help_text="Only builds of this plan (name or PHID)."
    )
    buildable = serializers.CharField(
        required=False, help_text="Only builds of this buildable (PHID or id)."
    )
    page = serializers.IntegerField(
        required=False, min_value=1, default=1, help_text="Page number, 50 builds a page."
    )

    def validate_status(self, value: str) -> list[str]:
        statuses = [status.strip() for status in value.split(",") if status.strip()]
        if not statuses:
            raise serializers.ValidationError("Give at least one build status.")
        unknown = [status for status in statuses if status not in Build.Status.values]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown build status {unknown[0]!r}; expected one or more of: "
                + ", ".join(Build.Status.values)
            )
        return statuses


class MessageOutputSerializer(serializers.Serializer):
    """``GET /api/v1/messages/<id>``: a stored message, whether the engine has consumed it
    and what consuming it decided (``outcome``, e.g. "target passed", or why it had no
    effect). ``work`` messages are never consumed. Expects ``author`` joined."""

    id = serializers.IntegerField()
    receiver = serializers.CharField(source="receiver_phid")
    type = serializers.CharField()
    build = serializers.IntegerField(source="build_id")
    target = serializers.IntegerField(source="target_id", allow_null=True)
    author = serializers.CharField(source="author.username", default=None, allow_null=True)
    idempotency_key = serializers.CharField(allow_null=True)
    consumed = serializers.BooleanField(source="is_consumed")
    outcome = serializers.SerializerMethodField()
    date_created = serializers.DateTimeField()
    date_consumed = serializers.DateTimeField(allow_null=True)

    def get_outcome(self, message: BuildMessage) -> str | None:
        return message.outcome or None


class UnitResultOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    namespace = serializers.CharField()
    engine = serializers.CharField()
    result = serializers.CharField()
    duration = serializers.FloatField(allow_null=True)
    path = serializers.CharField()
    details = serializers.CharField()
    format = serializers.CharField()
    coverage = serializers.JSONField(allow_null=True)
    message = serializers.IntegerField(source="message_id", allow_null=True)


class LintMessageOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    code = serializers.CharField()
    severity = serializers.CharField()
    path = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    char = serializers.IntegerField(allow_null=True)
    description = serializers.CharField()
    message = serializers.IntegerField(source="message_id", allow_null=True)


class BuildLogOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField()
    type = serializers.CharField(source="log_type")
    live = serializers.BooleanField(source="is_live")
    date_created = serializers.DateTimeField()


class TargetDetailSerializer(TargetOutputSerializer):
    """``GET /api/v1/targets/<id>``: a target with its unit results, lint messages (in the
    order received) and the list of its logs (their text is on the build page). Expects the
    target loaded by ``views.load_target``, so it issues no queries of its own."""

    build = serializers.IntegerField(source="build_id")
    build_phid = serializers.CharField(source="build.phid")
    date_created = serializers.DateTimeField()
    unit = UnitResultOutputSerializer(source="unit_results", many=True)
    lint = LintMessageOutputSerializer(source="lint_messages", many=True)
    logs = BuildLogOutputSerializer(many=True)
