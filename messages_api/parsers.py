"""Reading REST request bodies: a size cap on the bytes actually read, and strict JSON.

``load_body`` reads the body before DRF parses it, counting bytes as they arrive, so
neither a missing ``Content-Length`` (a chunked request, which gunicorn passes on without
one) nor a false one gets more than ``HARBOR_API_MAX_BODY_BYTES`` past it (413).
``StrictJSONParser`` then refuses, with a specific message, what Python's ``json`` would
accept but Harbor cannot store or should not trust: a body that is not UTF-8, ``NaN`` and
``Infinity``, nesting deeper than ``MAX_DEPTH``, and strings (keys too) holding NUL bytes or
unpaired surrogates (PostgreSQL refuses both in text columns, as a 500 after the fact); and
what Python's ``json`` will not read (``messages_api.json_limits``).
Only ``application/json`` is parsed, so a form-encoded body gets DRF's 415.
"""

import io
import json
import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.parsers import BaseParser

from messages_api.errors import InvalidJson, PayloadTooLarge
from messages_api.json_limits import MAX_DEPTH, UnreadableJson, read_json, too_deep, unstorable

READ_SIZE = 64 * 1024
# Raw NUL and control characters are invalid JSON already; a string can only hold NUL or a
# surrogate through an escape, so bodies without one (nearly all) skip the string checks.
ESCAPED_NUL_OR_SURROGATE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def query_values(request) -> dict[str, str]:
    """A DRF request's query parameters as a plain dict (a repeated one: its last value).

    Not the ``QueryDict`` itself: given one, DRF treats a blank value (``?status=``) of an
    optional field as if the parameter were absent, so a filter typed empty would silently
    match everything; from a dict, a blank value is refused (400) like any other bad one."""
    return {key: request.query_params[key] for key in request.query_params}


def max_body_bytes() -> int:
    """The body size cap in bytes (``HARBOR_API_MAX_BODY_BYTES``)."""
    return settings.HARBOR_API_MAX_BODY_BYTES


def load_body(request: HttpRequest, limit: int) -> None:
    """Read ``request``'s body with a cap of ``limit`` bytes and leave it for DRF to parse.

    A declared ``Content-Length`` over the limit is refused before reading anything. A
    chunked body (no ``Content-Length``; the server dechunks it and says so with
    ``wsgi.input_terminated``) is read from the server's input, which Django ignores. Raises
    PayloadTooLarge (413) once more than ``limit`` bytes have arrived.
    """
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    if declared is None and _is_chunked(request):
        stream = request.META["wsgi.input"]
    else:
        stream = request  # Django's stream: never more than the declared length
    body = read_capped(stream, limit)
    # Hand the bytes to Django's request as if it had read them itself, with their real
    # length, so DRF (which skips bodies without a Content-Length) parses them.
    request._stream = io.BytesIO(body)
    request._body = body
    request.META["CONTENT_LENGTH"] = str(len(body))


def read_capped(stream: Any, limit: int) -> bytes:
    """Read ``stream`` to its end; PayloadTooLarge as soon as more than ``limit`` bytes
    arrive (so at most ``limit`` + one read are ever held)."""
    chunks, size = [], 0
    while chunk := stream.read(min(READ_SIZE, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    return b"".join(chunks)


def _declared_length(request: HttpRequest) -> int | None:
    value = request.META.get("CONTENT_LENGTH")
    if value in (None, ""):
        return None
    try:
        return max(int(value), 0)
    except ValueError:
        return None


def _is_chunked(request: HttpRequest) -> bool:
    encoding = request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    return "chunked" in encoding and bool(request.META.get("wsgi.input_terminated"))


class StrictJSONParser(BaseParser):
    """DRF's JSON parser made strict (see the module docstring); raises InvalidJson (400
    ``invalid_json``) with what is wrong and, for a bad string, where (``unit[3].name``)."""

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context=None) -> Any:
        raw = read_capped(stream, max_body_bytes()) if stream is not None else b""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidJson(
                f"The body is not UTF-8 (invalid byte at offset {error.start}); "
                "JSON must be sent as UTF-8."
            ) from error
        data = _decode(text)
        if isinstance(data, dict | list):
            _check_values(data, text)
        elif isinstance(data, str):
            _check_string(data, "")
        return data


def _decode(text: str) -> Any:
    try:
        return read_json(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise InvalidJson(f"The body is not valid JSON: {error}.") from error
    except UnreadableJson as error:
        raise InvalidJson(f"The JSON {error}.") from error


def _refuse_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not a JSON number; send a finite number or null.")


def _too_deep() -> str:
    return f"The JSON {too_deep()}."


def _check_values(data: Any, text: str) -> None:
    """Walk ``data`` without recursion: the depth of every array and object and, when the
    text holds an escape that could produce one, NUL and surrogates in every string."""
    check_strings = ESCAPED_NUL_OR_SURROGATE.search(text) is not None
    pending: list[tuple[Any, str, int]] = [(data, "", 0)]
    while pending:
        value, path, depth = pending.pop()
        if isinstance(value, str):
            if check_strings:
                _check_string(value, path)
            continue
        if depth >= MAX_DEPTH:
            raise InvalidJson(_too_deep())
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                if check_strings:
                    _check_string(key, f"{path} (a key)" if path else "a key")
                child = f"{path}.{key}" if path else key
            else:
                child = f"{path}[{key}]"
            if isinstance(item, dict | list) or (check_strings and isinstance(item, str)):
                pending.append((item, child, depth + 1))


def _check_string(value: str, path: str) -> None:
    reason = unstorable(value)
    if reason:
        where = f" at {path}" if path else ""
        raise InvalidJson(f"The string{where} {reason}.")
