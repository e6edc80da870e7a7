"""Answering while the database or the broker is down: a JSON 503 with ``Retry-After``.

Senders are other CI systems. A request that fails because PostgreSQL or Redis cannot be
reached changed nothing (its transaction rolled back), so it is answered ``503
{"error": "unavailable", "detail": …}`` with ``Retry-After``, never Django's HTML 500 page,
and the sender retries with the same idempotency key (the README says how). Conduit calls
get the same status and header around their usual envelope, with ``ERR-UNAVAILABLE``.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse

from builds.engine import OUTAGE_ERRORS

logger = logging.getLogger(__name__)

# Seconds a sender should wait before trying again: about what a PostgreSQL restart or a
# Redis failover takes.
RETRY_AFTER_SECONDS = 5
CONDUIT_UNAVAILABLE = "ERR-UNAVAILABLE"


def what_is_down(error: BaseException) -> str:
    """``"database"`` or ``"broker"``, for the answer's detail."""
    return "database" if isinstance(error, (OperationalError, InterfaceError)) else "broker"


def unavailable_detail(error: BaseException) -> str:
    return (
        f"Harbor's {what_is_down(error)} is unavailable; nothing was stored. Try again in "
        f"{RETRY_AFTER_SECONDS} s with the same idempotency key."
    )


def unavailable_response(error: BaseException) -> JsonResponse:
    """The REST answer to a request that failed on ``error``: 503 in the API's error shape."""
    body = {"error": "unavailable", "detail": unavailable_detail(error)}
    return _with_retry_after(JsonResponse(body, status=503))


def unavailable_envelope(error: BaseException) -> JsonResponse:
    """The Conduit answer to a call that failed on ``error``: its envelope, with 503."""
    body = {
        "result": None,
        "error_code": CONDUIT_UNAVAILABLE,
        "error_info": unavailable_detail(error),
    }
    return _with_retry_after(JsonResponse(body, status=503))


def _with_retry_after(response: JsonResponse) -> JsonResponse:
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class OutageMiddleware:
    """Turns a view's database or broker outage into ``unavailable_response`` (any other
    exception is left to Django)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not isinstance(exception, OUTAGE_ERRORS):
            return None
        logger.warning(
            "%s %s: %s unavailable: %r",
            request.method,
            request.path,
            what_is_down(exception),
            exception,
        )
        return unavailable_response(exception)
