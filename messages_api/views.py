"""The REST API's views: authenticate, validate with a serializer, make one engine call,
serialize the result (docs/design.md §4.4). What a message or a build does is the engine's business.
"""

from django.db import transaction
from django.db.models import Prefetch, Q
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from builds import engine, permissions
from builds.models import Build, BuildLog, BuildMessage, BuildTarget, LintMessage, UnitResult
from builds.numbers import ascii_int
from builds.secrets import TargetSecretHolder
from messages_api.authentication import BearerTokenAuthentication, TargetSecretAuthentication
from messages_api.parsers import StrictJSONParser, load_body, max_body_bytes, query_values
from messages_api.serializers import (
    BuildFilterSerializer,
    BuildPageSerializer,
    MessageOutputSerializer,
    MessageReceiptSerializer,
    SendMessageSerializer,
    StartBuildSerializer,
    TargetDetailSerializer,
)
from messages_api.shapes import BuildOutputSerializer, load_build

BUILDS_PER_PAGE = 50
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class UserOrTargetSecretView(BasePermission):
    """Let a target secret holder through only to views that say they take one
    (``accepts_target_secret``); users (any signed-in one) everywhere."""

    message = "A target secret only lets its holder send messages to its own build target."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if isinstance(request.user, TargetSecretHolder):
            return getattr(view, "accepts_target_secret", False)
        return True


class ApiView(APIView):
    """Base of the REST views: bearer tokens or target secrets, strict JSON only, and a
    body cap (413) counted on the bytes read, before anything is parsed."""

    authentication_classes = [BearerTokenAuthentication, TargetSecretAuthentication]
    permission_classes = [IsAuthenticated, UserOrTargetSecretView]
    parser_classes = [StrictJSONParser]
    accepts_target_secret = False

    def initial(self, request: Request, *args, **kwargs) -> None:
        # After authentication and permissions: a refused caller's body is never read.
        super().initial(request, *args, **kwargs)
        if request.method in BODY_METHODS:
            load_body(request._request, max_body_bytes())


class SendMessageView(ApiView):
    """``POST /api/v1/sendmessage``: deliver a verdict or a command to a receiver PHID.

    202 ``{"id", "receiver", "type", "status": "accepted"}`` when stored; 200 with the first
    message and ``"status": "duplicate"`` for a repeated ``idempotency_key``. Errors: 400
    (validation, or a type the receiver cannot take), 404 (unknown receiver), 409 (a verdict
    that can no longer count, with the target's and build's statuses), 403 (the author may
    not message this build, or a target secret that is not the receiver's).
    Accepts ``Authorization: Harbor-Target-Secret <secret>`` as well as a bearer token.
    """

    accepts_target_secret = True

    def post(self, request: Request) -> Response:
        serializer = SendMessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        receipt = engine.receive_message(
            data["receiver"],
            data["type"],
            author=request.user,
            unit=data.get("unit"),
            lint=data.get("lint"),
            idempotency_key=data.get("idempotency_key"),
            fields=data.get("fields"),
        )
        code = status.HTTP_202_ACCEPTED if receipt.created else status.HTTP_200_OK
        return Response(MessageReceiptSerializer(receipt).data, status=code)


class BuildListView(ApiView):
    """``GET /api/v1/builds``: builds, newest first, 50 a page, filtered by ``status``
    (comma-separated), ``plan`` (name or PHID), ``buildable`` (PHID or id); two queries
    whatever the page holds. ``POST``: start a build (403 unless
    ``permissions.can_run``); 201 with the build as ``GET /api/v1/builds/<id>`` shows it."""

    def get(self, request: Request) -> Response:
        filters = BuildFilterSerializer(data=query_values(request))
        filters.is_valid(raise_exception=True)
        builds = filter_builds(filters.validated_data)
        page = filters.validated_data["page"]
        count = builds.count()
        pages = max(1, -(-count // BUILDS_PER_PAGE))
        if page > pages:
            raise NotFound(f"Page {page} is past the last page ({pages}).")
        offset = (page - 1) * BUILDS_PER_PAGE
        results = builds[offset : offset + BUILDS_PER_PAGE]
        body = {"count": count, "page": page, "pages": pages, "results": results}
        return Response(BuildPageSerializer(body).data)

    def post(self, request: Request) -> Response:
        serializer = StartBuildSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        permissions.check_can_run(request.user, data["plan"])
        # One transaction, so a build that cannot start leaves no new buildable behind; its
        # first steps (or, for a plan with concurrency groups, its first pass) are queued on
        # commit.
        with transaction.atomic():
            buildable = engine.find_or_create_buildable(**data["buildable"])
            build = engine.start_build(
                data["plan"],
                buildable,
                initiator=request.user,
                parameters=data.get("parameters") or {},
            )
        body = BuildOutputSerializer(load_build(build.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)


class BuildDetailView(ApiView):
    """``GET /api/v1/builds/<id>``: a build with its current generation's targets (404
    ``not_found`` if there is no such build). Two queries, however many targets."""

    def get(self, request: Request, pk: int) -> Response:
        return Response(BuildOutputSerializer(load_build(pk)).data)


class MessageDetailView(ApiView):
    """``GET /api/v1/messages/<id>``: a message, whether it was consumed and its outcome.
    One query. A target secret holder may read the messages sent to its own target."""

    accepts_target_secret = True

    def get(self, request: Request, pk: int) -> Response:
        message = get_object_or_404(BuildMessage.objects.select_related("author", "target"), pk=pk)
        holder = request.user
        if isinstance(holder, TargetSecretHolder) and not (
            message.target and holder.holds_secret_of(message.target.phid)
        ):
            raise permissions.NotPermitted(
                "A target secret only lets its holder read messages sent to its own target."
            )
        return Response(MessageOutputSerializer(message).data)


class TargetDetailView(ApiView):
    """``GET /api/v1/targets/<id>``: a build target with its unit results, lint messages
    and log list; four queries however many results."""

    def get(self, request: Request, pk: int) -> Response:
        return Response(TargetDetailSerializer(load_target(pk)).data)


def filter_builds(filters: dict):
    """The builds matching ``BuildFilterSerializer``'s validated ``filters``, newest first,
    with what ``BuildSummarySerializer`` reads joined."""
    builds = Build.objects.select_related("plan", "buildable", "initiator").order_by("-id")
    if filters.get("status"):
        builds = builds.filter(status__in=filters["status"])
    if filters.get("plan"):
        builds = builds.filter(Q(plan__name=filters["plan"]) | Q(plan__phid=filters["plan"]))
    if filters.get("buildable"):
        value = filters["buildable"]
        match = Q(buildable__phid=value)
        if (buildable_id := ascii_int(value)) is not None:
            match |= Q(buildable_id=buildable_id)
        builds = builds.filter(match)
    return builds


def load_target(pk: int) -> BuildTarget:
    """The target ``pk`` with its build, unit results, lint messages and logs, in four
    queries; raises ``Http404`` if there is none."""
    queryset = BuildTarget.objects.select_related("build").prefetch_related(
        Prefetch("unit_results", queryset=UnitResult.objects.order_by("id")),
        Prefetch("lint_messages", queryset=LintMessage.objects.order_by("id")),
        Prefetch("logs", queryset=BuildLog.objects.order_by("id")),
    )
    return get_object_or_404(queryset, pk=pk)


@csrf_exempt  # any method may arrive here; the answer is a 404, never a CSRF page
def not_found(request: HttpRequest) -> JsonResponse:
    """Every path under ``/api/`` that no route takes: 404 in the API's error shape rather
    than Django's HTML page, whatever the method."""
    detail = f"There is no API endpoint at {request.path}; /api/schema/ describes the API."
    return JsonResponse({"error": "not_found", "detail": detail}, status=404)
