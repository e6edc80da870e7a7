"""The Conduit transport: decode a call, authenticate it, run the method, write the envelope.

Request encodings (docs/harbormaster.md §6.1;
``PhabricatorConduitAPIController::decodeConduitParams``), as form fields of a POST (or a GET's
query string):

1. ``params=<JSON object>`` with authentication under ``__conduit__`` (what ``arc`` and the
   ``phabricator`` client send); strictly typed.
2. ``params[<key>]=<JSON value>`` per key (the web console); strictly typed.
3. plain fields: ``api.token=…`` (any ``api.*`` key is metadata) and parameters as strings or
   PHP-style arrays (``unit[0][name]=…``); every scalar arrives as a string.

Every answer is HTTP 200 ``{"result", "error_code", "error_info"}`` (docs/harbormaster.md §6.2),
except while the database or broker is down: 503 with ``Retry-After`` around
``ERR-UNAVAILABLE``. The order of checks is Harbormaster's: decode, method exists, no unknown
parameter, authenticate, run.
"""

import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from builds.numbers import ascii_int
from messages_api.conduit import auth, registry
from messages_api.conduit.errors import CallError, ConduitError, CoreError
from messages_api.conduit.params import check_storable
from messages_api.json_limits import MAX_DEPTH, UnreadableJson, read_json, too_deep
from messages_api.outage import OUTAGE_ERRORS, unavailable_envelope

logger = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_BRACKET = re.compile(r"\[([^\]]*)\]")
# Form fields that steer the transport rather than carry parameters.
_TRANSPORT_FIELDS = {"output", "__conduit__"}


def max_body_bytes() -> int:
    """Bytes of request body a call may carry (``HARBOR_CONDUIT_MAX_BODY_BYTES``)."""
    return settings.HARBOR_CONDUIT_MAX_BODY_BYTES


@csrf_exempt
def conduit_view(request: HttpRequest, method_name: str) -> JsonResponse:
    """``/api/<method_name>``: run one Conduit call and answer with its envelope."""
    try:
        result = _run(request, method_name)
    except ConduitError as error:
        return envelope(None, error.code, error.info)
    except OUTAGE_ERRORS as error:
        logger.warning("Conduit method %s: %r", method_name, error)
        return unavailable_envelope(error)
    except Exception as error:  # Harbormaster answers every exception with an envelope
        logger.exception("Conduit method %s failed", method_name)
        info = f"Unexpected error ({type(error).__name__}); the server log has the details."
        return envelope(None, CoreError.code, info)
    return envelope(result, None, None)


def envelope(result: Any, error_code: str | None, error_info: str | None) -> JsonResponse:
    """Conduit's response body, always with HTTP 200."""
    body = {"result": result, "error_code": error_code, "error_info": error_info}
    return JsonResponse(body, safe=False)


def _run(request: HttpRequest, method_name: str) -> Any:
    fields = _form_fields(request)
    metadata, params, strict = decode_params(method_name, fields)
    method = registry.get_method(method_name)
    unknown = [key for key in params if key not in method.params]
    if unknown:
        names = "', '".join(unknown)
        raise CallError(
            f"API Method \"{method_name}\" does not define these parameters: '{names}'."
        )
    user = auth.authenticate(metadata) if method.requires_auth else None
    check_storable(params)
    present = {key: value for key, value in params.items() if value is not None}
    return method.handler(registry.Call(method, present, user, strict, request))


def _form_fields(request: HttpRequest) -> list[tuple[str, str]]:
    """The call's form fields: a POST's urlencoded (or multipart) body, or a GET's query.

    Read here rather than through ``request.POST`` so the body limit is Conduit's own (a
    report of many unit results is larger than Django's default upload limit) and a plain
    form call may have more fields than Django's default field count allows."""
    if request.method != "POST":
        return _pairs(request.GET)
    length = ascii_int(request.META.get("CONTENT_LENGTH") or "") or 0  # as Django reads it
    if length > max_body_bytes():
        raise CoreError(f"The request body is larger than {max_body_bytes()} bytes.")
    content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return _pairs(request.POST)
    body = request.read(max_body_bytes() + 1)
    if len(body) > max_body_bytes():
        raise CoreError(f"The request body is larger than {max_body_bytes()} bytes.")
    if content_type not in ("", FORM_CONTENT_TYPE):
        # Conduit reads form fields only; a JSON body carries no parameters
        # (docs/harbormaster.md §6.1).
        return []
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as error:
        # Replacing the bytes would store text the client never sent; REST refuses too.
        raise CoreError(
            "The request body is not UTF-8 (a form field, percent-decoded, holds an invalid "
            "byte); Conduit parameters must be sent as UTF-8."
        ) from error


def _pairs(querydict) -> list[tuple[str, str]]:
    return [(key, value) for key, values in querydict.lists() for value in values]


def decode_params(method_name: str, fields: list[tuple[str, str]]) -> tuple[dict, dict, bool]:
    """Return ``(metadata, params, strictly_typed)`` from the call's form fields, trying
    the three encodings in Harbormaster's order. Raises CoreError for undecodable JSON
    (saying why when it is valid JSON Python will not read) or keys nested too deeply."""
    console = [(key[7:-1], value) for key, value in fields if _is_console_key(key)]
    if console:
        return _split_metadata(dict(_decode_console_value(k, v) for k, v in console)) + (True,)
    params_json = dict(fields).get("params", "")
    if params_json:
        invalid = f"Invalid parameter information was passed to method '{method_name}'"
        try:
            params = read_json(params_json)
        except UnreadableJson as error:
            raise CoreError(f"{invalid}: the JSON {error}.") from error
        except ValueError:
            params = None
        if not isinstance(params, dict):
            raise CoreError(f"{invalid}.")
        return _split_metadata(params) + (True,)
    return _decode_plain(fields) + (False,)


def _is_console_key(key: str) -> bool:
    return key.startswith("params[") and key.endswith("]") and "[" not in key[7:-1]


def _decode_console_value(key: str, value: str) -> tuple[str, Any]:
    try:
        return key, read_json(value) if value != "" else None
    except UnreadableJson as error:
        raise CoreError(f"The value for parameter '{key}' {error}.") from error
    except ValueError as error:
        raise CoreError(
            f"The value for parameter '{key}' is not valid JSON. All parameters must be "
            "encoded as JSON values, including strings (which means you need to surround "
            f"them in double quotes). Check your syntax. Value was: {value}"
        ) from error


def _split_metadata(params: dict) -> tuple[dict, dict]:
    metadata = params.pop("__conduit__", None)
    return (metadata if isinstance(metadata, dict) else {}), params


def _decode_plain(fields: list[tuple[str, str]]) -> tuple[dict, dict]:
    metadata: dict = {}
    params: dict = {}
    for key, value in fields:
        if key.startswith("api."):
            metadata[key[4:]] = value
        elif key not in _TRANSPORT_FIELDS and not key.startswith("__"):
            path = _key_path(key)
            if len(path) > MAX_DEPTH:  # before _php_lists recurses into it
                raise CoreError(f"Parameter '{path[0]}' {too_deep()}.")
            _assign(params, path, value)
    return metadata, {key: _php_lists(value) for key, value in params.items()}


def _key_path(key: str) -> list[str]:
    """``unit[0][name]`` → ``["unit", "0", "name"]`` (PHP's bracket syntax)."""
    head, bracket, rest = key.partition("[")
    if not bracket or not head:
        return [key]
    return [head, *_BRACKET.findall("[" + rest)]


def _assign(node: dict, path: list[str], value: str) -> None:
    for part in path[:-1]:
        key = part if part != "" else str(len(node))  # ``a[]=x`` appends, as in PHP
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1] if path[-1] != "" else str(len(node))] = value


def _php_lists(value: Any) -> Any:
    """Turn maps keyed ``"0"``…``"n-1"`` into lists, as PHP arrays of that shape are lists."""
    if not isinstance(value, dict):
        return value
    converted = {key: _php_lists(child) for key, child in value.items()}
    if converted and list(converted) == [str(i) for i in range(len(converted))]:
        return list(converted.values())
    return converted
