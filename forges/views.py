"""``POST /hooks/<name>``: a configured forge's webhooks. Verify, read, record, answer.

The forge's signature (or token) is checked on the raw body before anything is parsed or
stored (``forges.signatures``); the body is read with the API's cap (413). Answers, all
JSON: 401 for an unknown forge or a missing or wrong signature (one answer for both, so
the forges configured cannot be probed); 200 for GitHub's ``ping``; 202 with the delivery
id and the builds started (``[]`` and ``ignored`` with why, for an event that starts
none); 200 with ``"status": "duplicate"`` and the first delivery's builds for a delivery
id received before; 400 for missing headers or a payload that is not JSON or not the
event's shape; 415 for a form-encoded webhook.
"""

import io

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from builds.permissions import can_run
from builds.views.common import sign_in_required
from forges.config import Forge
from forges.deliveries import DeliveryReceipt, receive_delivery
from forges.events import PayloadError
from forges.models import OutboundDelivery
from forges.payloads import HEADERS, PING_EVENTS, read_event
from forges.redelivery import NotRedeliverable, redeliver
from forges.signatures import VERIFIERS
from messages_api.errors import error_response
from messages_api.parsers import StrictJSONParser, load_body, max_body_bytes

UNVERIFIED = (
    "Unknown forge, or a missing or wrong signature: check the webhook's URL "
    "(/hooks/<name of a HARBOR_FORGES entry>) and its secret."
)
DELIVERY_ID_MAX = 100


class WebhookView(APIView):
    """Receives one forge's webhooks; the forge is authenticated by its signature alone."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes: list = []  # the raw body is verified first, then parsed here
    schema = None  # not part of the REST API's description: the forges define it

    def post(self, request: Request, name: str) -> Response:
        forge = settings.HARBOR_FORGES.get(name)
        if forge is None:
            return error_response("not_authenticated", UNVERIFIED, status.HTTP_401_UNAUTHORIZED)
        load_body(request._request, max_body_bytes())
        body = request._request.body
        if not VERIFIERS[forge.type](forge, request.headers, body):
            return error_response("not_authenticated", UNVERIFIED, status.HTTP_401_UNAUTHORIZED)
        return self._receive(request, forge, body)

    def _receive(self, request: Request, forge: Forge, body: bytes) -> Response:
        headers = HEADERS[forge.type]
        event_name = request.headers.get(headers.event, "")
        delivery_id = request.headers.get(headers.delivery, "")
        problem = _header_problem(headers.event, event_name, headers.delivery, delivery_id)
        if problem:
            return error_response("missing_header", problem, status.HTTP_400_BAD_REQUEST)
        if event_name == PING_EVENTS.get(forge.type):
            return Response({"status": "pong", "delivery": delivery_id})
        if request.content_type.startswith("application/x-www-form-urlencoded"):
            return error_response(
                "unsupported_media_type",
                "Harbor reads webhooks as JSON: set the webhook's content type to "
                "application/json.",
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            )
        payload = StrictJSONParser().parse(io.BytesIO(body))
        try:
            event = read_event(forge.type, event_name, payload)
        except PayloadError as error:
            return error_response("invalid_payload", str(error), status.HTTP_400_BAD_REQUEST)
        if event is None:
            ignored = f"{event_name!r} events start no builds"
            body = {"delivery": delivery_id, "builds": [], "ignored": ignored}
            return Response(body, status=status.HTTP_202_ACCEPTED)
        return _answer(receive_delivery(forge, delivery_id, event_name, event))


def _header_problem(event_header: str, event: str, delivery_header: str, delivery: str) -> str:
    """Why the event and delivery headers cannot be used, or ''."""
    if not event or len(event) > 64:
        return f"The {event_header} header is missing (or longer than 64 characters)."
    if not delivery or len(delivery) > DELIVERY_ID_MAX or not delivery.isprintable():
        return (
            f"The {delivery_header} header is missing (or not a printable id of at most "
            f"{DELIVERY_ID_MAX} characters)."
        )
    return ""


def _answer(receipt: DeliveryReceipt) -> Response:
    body: dict = {"delivery": receipt.delivery_id, "builds": receipt.builds}
    if receipt.ignored:
        body["ignored"] = receipt.ignored
    if receipt.duplicate:
        body["status"] = "duplicate"
        return Response(body, status=status.HTTP_200_OK)
    return Response(body, status=status.HTTP_202_ACCEPTED)


@require_POST
@sign_in_required
def redeliver_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The build page's "Redeliver" button: send delivery ``pk`` again
    (``forges.redelivery``) and go back to the build page saying what happened. 403 for a
    user who may not run the build's plan, 404 for an unknown delivery."""
    row = get_object_or_404(OutboundDelivery.objects.select_related("build__plan"), pk=pk)
    if not can_run(request.user, row.build.plan):
        raise PermissionDenied("You may not run this build's plan, so not send its deliveries.")
    try:
        copy = redeliver(row.pk)
    except NotRedeliverable as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Delivery {row.pk} is being sent again as delivery {copy.pk}.")
    return redirect(row.build.get_absolute_url())
