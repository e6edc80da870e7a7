"""A build as the REST API shows it, for the API's views and for commands alike.

``GET /api/v1/builds/<id>`` answers ``BuildOutputSerializer(load_build(id)).data``, and so
does ``manage.py build --wait --json``: one shape, defined here with the API that owns it
(the domain, ``builds``, stays free of DRF; its command reads the shape from here, as a
view would). Statuses are the stored, bare values (``building``); dates are ISO 8601
strings (DRF's settings).
"""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from builds.models import Build, BuildTarget


class BuildableOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    phid = serializers.CharField()
    repository = serializers.CharField()
    ref = serializers.CharField()
    commit = serializers.CharField()


class TargetOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    phid = serializers.CharField()
    name = serializers.CharField()
    step = serializers.CharField(source="step_key")
    status = serializers.CharField()
    generation = serializers.IntegerField()
    attempt = serializers.IntegerField(
        source="step_attempt", help_text="The step's attempt in this run: 2 after a retry or rerun."
    )
    failure = serializers.CharField(help_text="How a failed target failed: failed, lost, timeout.")
    superseded_by = serializers.CharField(
        help_text='"retry" or "rerun" once a newer attempt replaced it, else "".'
    )
    date_started = serializers.DateTimeField(allow_null=True)
    date_completed = serializers.DateTimeField(allow_null=True)


class BuildSummarySerializer(serializers.Serializer):
    """A build as ``GET /api/v1/builds`` lists it: ``GET /api/v1/builds/<id>`` without the
    targets. Statuses are the stored, bare values (``building``); dates are ISO 8601.
    Expects plan, buildable and initiator joined, so it issues no queries of its own."""

    id = serializers.IntegerField()
    phid = serializers.CharField()
    url = serializers.CharField(source="absolute_url")
    plan = serializers.CharField(source="plan.name")
    buildable = BuildableOutputSerializer()
    status = serializers.CharField()
    generation = serializers.IntegerField()
    initiator = serializers.CharField(source="initiator.username", default=None, allow_null=True)
    date_created = serializers.DateTimeField()
    date_modified = serializers.DateTimeField()


class BuildOutputSerializer(BuildSummarySerializer):
    """A build as ``GET /api/v1/builds/<id>`` shows it, with its current generation's targets.

    Expects the build loaded by ``load_build`` (plan, buildable and initiator joined,
    targets prefetched), so it issues no queries of its own.
    """

    targets = serializers.SerializerMethodField()

    @extend_schema_field(TargetOutputSerializer(many=True))
    def get_targets(self, build: Build) -> list[dict]:
        # Filtered here rather than in the prefetch: a Prefetch queryset cannot refer to
        # each build's own generation, and older generations are few.
        current = [t for t in build.targets.all() if t.generation == build.generation]
        return TargetOutputSerializer(current, many=True).data


def load_build(pk: int) -> Build:
    """The build ``pk`` with what ``BuildOutputSerializer`` reads, in two queries; raises
    ``Http404`` if there is none."""
    targets = Prefetch("targets", queryset=BuildTarget.objects.order_by("id"))
    queryset = Build.objects.select_related("plan", "buildable", "initiator").prefetch_related(
        targets
    )
    return get_object_or_404(queryset, pk=pk)


def build_shape(pk: int) -> dict:
    """The build ``pk`` as ``GET /api/v1/builds/<pk>`` answers it (a JSON-ready dict);
    raises ``Http404`` if there is none."""
    return BuildOutputSerializer(load_build(pk)).data
