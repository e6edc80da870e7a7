"""Make HTTP Request: call an outside system, optionally waiting for its message.

Follows Harbormaster's ``HarbormasterHTTPRequestBuildStepImplementation`` (spec §4): the
``uri`` takes variables, URI-encoded; ``method`` defaults to POST; a ``credential`` adds
HTTP basic auth; any 2xx succeeds and anything else (or no answer within ``timeout``)
fails; the response's status line, headers and body go to the target's log. Beyond it,
``headers`` and a ``body`` may be set, and the number of redirects is bounded.

Config: ``uri`` (required), ``method`` (GET/POST/PUT/DELETE/PATCH), ``headers`` (map; values
take variables, unescaped, and a value that would hold a line break is refused),
``body`` (see below), ``credential`` (the name of an entry of the ``HARBOR_CREDENTIALS``
setting, a map of ``{"username", "password"}``, so secrets stay out of plan files; the
credential is never written to a log), ``timeout`` (seconds), ``max_redirects`` (default 5;
0 refuses any redirect; requests drops the credential on a redirect to another host).

``body`` escaping, per field: a mapping or list is sent as JSON (``Content-Type:
application/json`` unless a header says otherwise), with variables substituted into every
string inside it *before* encoding, so a value is always one JSON string, whatever quotes it
holds; a text ``body`` is sent as written with variables substituted unescaped (use it for
form or plain bodies the plan author controls; for JSON use a mapping).
"""

import json
from typing import Any

import requests
from django.conf import settings

from builds import step_options
from builds.egress import refuse_disallowed_redirect, url_refusal
from builds.secrets import mask_secrets
from builds.variables import substitute, uri_escape
from workers.steps.base import BuildStepImplementation, StepContext, StepFailed

METHODS = set(step_options.HTTP_METHODS)
MAX_LOGGED_BODY = 1024 * 1024


class HttpStep(BuildStepImplementation):
    """Make an HTTP request to an outside system."""

    declaration = step_options.HTTP
    description = "Make an HTTP request; optionally wait for the system's message."

    def run(self, context: StepContext) -> None:
        config = context.config
        uri = substitute(config["uri"], context.variables, uri_escape)
        # Logs and errors show the URI with ${target.secret} masked; HARBOR_HTTP_ALLOWED_URLS
        # is checked before anything is sent (and on each redirect, in _send).
        shown_uri = mask_secrets(uri, context.variables)
        if refusal := url_refusal(uri):
            context.write_log(shown_uri, "http.error", refusal)
            raise StepFailed(refusal)
        method = context.option("method").upper()
        if method not in METHODS:
            raise StepFailed(f"Unsupported HTTP method {method!r}.")
        headers = _headers(config, context.variables)
        body = _body(config, context.variables, headers)
        context.write_log(
            shown_uri, "http.request", _describe_request(method, shown_uri, headers, body)
        )
        try:
            response = _send(
                method,
                uri,
                headers=headers,
                body=body,
                auth=_credential(config.get("credential")),
                timeout=float(config.get("timeout", settings.HARBOR_HTTP_TIMEOUT)),
                max_redirects=int(context.option("max_redirects")),
            )
        except requests.RequestException as exc:
            error = mask_secrets(str(exc), context.variables)
            context.write_log(shown_uri, "http.error", error)
            raise StepFailed(f"{method} {shown_uri} failed: {error}") from exc
        _log_response(context, shown_uri, response)
        if not 200 <= response.status_code < 300:
            raise StepFailed(f"{method} {shown_uri} answered HTTP {response.status_code}.")


def _headers(config: dict, variables: dict) -> dict[str, str]:
    """The configured headers with variables substituted; a line break in a value (which
    would start another header) is refused."""
    headers = {}
    for name, value in (config.get("headers") or {}).items():
        text = substitute(str(value), variables)
        if "\r" in text or "\n" in text or "\r" in str(name) or "\n" in str(name):
            raise StepFailed(f"The header {name!r} would contain a line break.")
        headers[str(name)] = text
    return headers


def _body(config: dict, variables: dict, headers: dict[str, str]) -> bytes | None:
    """The request body as bytes (see the module docstring for escaping), or None; sets
    ``Content-Type`` to JSON for a structured body unless a header already sets it."""
    body = config.get("body")
    if body is None:
        return None
    if isinstance(body, str):
        return substitute(body, variables).encode()
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    return json.dumps(_substitute_all(body, variables)).encode()


def _substitute_all(value: Any, variables: dict) -> Any:
    """``value`` with variables substituted into every string (keys included) inside it."""
    if isinstance(value, str):
        return substitute(value, variables)
    if isinstance(value, dict):
        return {
            _substitute_all(k, variables): _substitute_all(v, variables) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute_all(item, variables) for item in value]
    return value


def _send(
    method: str,
    uri: str,
    *,
    headers: dict[str, str],
    body: bytes | None,
    auth: tuple[str, str] | None,
    timeout: float,
    max_redirects: int,
) -> requests.Response:
    """Send the request, following at most ``max_redirects`` redirects (more raises
    ``requests.TooManyRedirects``, a ``RequestException``)."""
    with requests.Session() as session:
        session.max_redirects = max(max_redirects, 0)
        return session.request(
            method,
            uri,
            headers=headers,
            data=body,
            auth=auth,
            timeout=timeout,
            allow_redirects=max_redirects > 0,
            hooks={"response": refuse_disallowed_redirect} if max_redirects > 0 else None,
        )


def _describe_request(method: str, uri: str, headers: dict[str, str], body: bytes | None) -> str:
    """The request as logged: method, URI, the configured headers' names (values may be
    tokens) and the body's size; the credential never appears."""
    lines = [f"{method} {uri}"] + [f"{name}: (set)" for name in headers]
    if body is not None:
        lines.append(f"({len(body)} bytes of body)")
    return "\n".join(lines)


def _credential(name: str | None) -> tuple[str, str] | None:
    if not name:
        return None
    credentials = settings.HARBOR_CREDENTIALS
    if name not in credentials:
        raise StepFailed(f"No credential named {name!r} is configured (HARBOR_CREDENTIALS).")
    entry = credentials[name]
    return entry["username"], entry["password"]


def _log_response(context: StepContext, uri: str, response: requests.Response) -> None:
    head = "\n".join(
        [f"HTTP {response.status_code} {response.reason}"]
        + [f"{name}: {value}" for name, value in response.headers.items()]
    )
    if response.history:
        hops = " -> ".join(
            f"{r.status_code} {r.headers.get('Location', '')}" for r in response.history
        )
        head = f"Redirected: {hops}\n{head}"
    # A system that echoes the callback secret back must not get it into the log either.
    context.write_log(uri, "http.head", mask_secrets(head, context.variables))
    context.write_log(
        uri, "http.body", mask_secrets(response.text[:MAX_LOGGED_BODY], context.variables)
    )
