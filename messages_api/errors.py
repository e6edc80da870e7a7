"""One JSON shape for every refused REST request.

Every 4xx body is ``{"error": "<code>", "detail": "<what is wrong>"}``; validation errors add
``"fields": {"<path>": ["<message>", …]}`` with paths such as ``unit[0].name``, and a refused
message (409) adds ``"target_status"`` and ``"build_status"``. Anything else (a bug, a lost
database) is left to Django as a 500.
"""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

from builds import engine
from builds.permissions import NotPermitted

# DRF's own codes, renamed where the request's author reads them better this way.
CODE_FOR_DRF = {"parse_error": "invalid_json", "invalid": "validation_error"}


class PayloadTooLarge(exceptions.APIException):
    """The request body is larger than the API accepts (413)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class InvalidJson(exceptions.ParseError):
    """The body is not JSON Harbor accepts (400 ``invalid_json``): not UTF-8, malformed,
    ``NaN``/``Infinity``, nested too deeply, or a string with NUL or a lone surrogate."""

    default_detail = "The body is not valid JSON."


def json_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``: turn ``exc`` into the JSON error response, or None (500).

    Maps DRF's exceptions (401 keeps its ``WWW-Authenticate`` header), Django's ``Http404``
    and ``PermissionDenied``, and the engine's refusals: ``ReceiverNotFound`` → 404
    ``not_found``, ``NotPermitted`` → 403 ``permission_denied``, ``InvalidMessage`` → 400
    ``invalid_message``, ``PlanNotRunnable`` → 400
    ``validation_error`` on ``plan``, ``MessageRefused`` → 409 ``conflict``. Rolls back an
    atomic request, as DRF's default handler does.
    """
    response = _engine_error_response(exc) or _framework_error_response(exc)
    if response is not None:
        set_rollback()
    return response


def error_response(code: str, detail: str, status_code: int, **extra: Any) -> Response:
    """A response in the API's error shape; ``extra`` keys are added to the body."""
    return Response({"error": code, "detail": detail, **extra}, status=status_code)


def _engine_error_response(exc: Exception) -> Response | None:
    if isinstance(exc, engine.ReceiverNotFound):
        detail = str(exc) or "No build target, build or buildable has that PHID."
        return error_response("not_found", detail, status.HTTP_404_NOT_FOUND)
    if isinstance(exc, NotPermitted):
        return error_response("permission_denied", str(exc), status.HTTP_403_FORBIDDEN)
    if isinstance(exc, engine.InvalidMessage):
        return error_response("invalid_message", str(exc), status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, engine.PlanNotRunnable):
        # Normally caught by StartBuildSerializer; reached only if the plan was disabled
        # since, so answer exactly as the serializer would.
        return _validation_error_response(exceptions.ValidationError({"plan": [str(exc)]}))
    if isinstance(exc, engine.MessageRefused):
        return error_response(
            "conflict",
            str(exc),
            status.HTTP_409_CONFLICT,
            target_status=getattr(exc, "target_status", None),
            build_status=getattr(exc, "build_status", None),
        )
    return None


def _framework_error_response(exc: Exception) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    if isinstance(exc, exceptions.ValidationError):
        return _validation_error_response(exc)
    code = CODE_FOR_DRF.get(exc.default_code, exc.default_code)
    response = error_response(code, str(exc.detail), exc.status_code)
    if getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        response["Retry-After"] = str(int(exc.wait))
    return response


def _validation_error_response(exc: exceptions.ValidationError) -> Response:
    fields = flatten_errors(exc.detail)
    problems = [f"{path}: {messages[0]}" for path, messages in fields.items()]
    detail = "Invalid request: " + problems[0] if problems else "Invalid request."
    if len(problems) > 1:
        detail += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return error_response("validation_error", detail, status.HTTP_400_BAD_REQUEST, fields=fields)


def flatten_errors(detail: Any, path: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested error detail into ``{"unit[0].name": ["This field is required."]}``.

    Errors about a whole object (``non_field_errors``) are reported under the object's path,
    or under ``non_field_errors`` at the top level.
    """
    if isinstance(detail, dict):
        items = detail.items()
    elif isinstance(detail, list) and not all(isinstance(item, str) for item in detail):
        items = enumerate(detail)
    else:
        messages = detail if isinstance(detail, list) else [detail]
        return {path or api_settings.NON_FIELD_ERRORS_KEY: [str(m) for m in messages]}
    flat: dict[str, list[str]] = {}
    for key, value in items:
        if value:
            flat.update(flatten_errors(value, _child_path(path, key)))
    return flat


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key == api_settings.NON_FIELD_ERRORS_KEY:
        return path
    return f"{path}.{key}" if path else key
