"""Make HTTP Request: call an outside system, optionally waiting for its message.

Follows Harbormaster's ``HarbormasterHTTPRequestBuildStepImplementation`` (docs/harbormaster.md §4):
the ``uri`` takes variables, URI-encoded; ``method`` defaults to POST; a ``credential`` adds
HTTP basic auth; any 2xx succeeds and anything else (or no answer within ``timeout``)
fails; the response's status line, headers and body go to the target's log. Beyond it,
``headers`` and a ``body`` may be set, a credential may also be a bearer token or a header
of its own, and the number of redirects is bounded.

Config: ``uri`` (required), ``method`` (GET/POST/PUT/DELETE/PATCH), ``headers`` (map; values
take variables, unescaped, and a value that would hold a line break is refused),
``body`` (see below), ``credential`` (the name of an entry of the ``HARBOR_CREDENTIALS``
setting, see ``harbor.credentials``, so secrets stay out of plan files; the credential is
never written to a log, and its secret is masked in what the server answers),
``timeout`` (seconds), ``max_redirects`` (default 5; 0 refuses any redirect; the credential
is dropped on a redirect to another host).

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
from django.core.exceptions import ImproperlyConfigured

from builds import step_options
from builds.egress import refuse_disallowed_redirect, url_refusal
from builds.secrets import MASK, mask_secrets
from builds.variables import substitute, uri_escape
from harbor.credentials import Credential, credential
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
        auth = _credential(config.get("credential"))
        hidden = auth.secrets if auth else ()
        context.write_log(
            shown_uri, "http.request", _describe_request(method, shown_uri, headers, body, auth)
        )
        try:
            response = _send(
                method,
                uri,
                headers=headers,
                body=body,
                auth=auth,
                timeout=float(config.get("timeout", settings.HARBOR_HTTP_TIMEOUT)),
                max_redirects=int(context.option("max_redirects")),
            )
        except requests.RequestException as exc:
            error = mask_secrets(str(exc), context.variables, hidden)
            context.write_log(shown_uri, "http.error", error)
            raise StepFailed(f"{method} {shown_uri} failed: {error}") from exc
        _log_response(context, shown_uri, response, hidden)
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


class CredentialAuth(requests.auth.AuthBase):
    """Adds a credential's header to a request (as ``requests`` auth, so a ``.netrc`` entry
    never replaces it)."""

    def __init__(self, credential: Credential):
        self.credential = credential

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[self.credential.header] = self.credential.value
        return request


class CredentialSession(requests.Session):
    """A session that drops the credential's header on a redirect to another host, as
    ``requests`` does for ``Authorization`` only: an ``X-Api-Key`` would otherwise follow."""

    credential_header: str | None = None

    def rebuild_auth(self, prepared_request, response) -> None:
        super().rebuild_auth(prepared_request, response)
        moved = self.should_strip_auth(response.request.url, prepared_request.url)
        if moved and self.credential_header:
            prepared_request.headers.pop(self.credential_header, None)


def _send(
    method: str,
    uri: str,
    *,
    headers: dict[str, str],
    body: bytes | None,
    auth: Credential | None,
    timeout: float,
    max_redirects: int,
) -> requests.Response:
    """Send the request, following at most ``max_redirects`` redirects (more raises
    ``requests.TooManyRedirects``, a ``RequestException``)."""
    with CredentialSession() as session:
        session.credential_header = auth.header if auth else None
        session.max_redirects = max(max_redirects, 0)
        return session.request(
            method,
            uri,
            headers=headers,
            data=body,
            auth=CredentialAuth(auth) if auth else None,
            timeout=timeout,
            allow_redirects=max_redirects > 0,
            hooks={"response": refuse_disallowed_redirect} if max_redirects > 0 else None,
        )


def _describe_request(
    method: str, uri: str, headers: dict[str, str], body: bytes | None, auth: Credential | None
) -> str:
    """The request as logged: method, URI, the configured headers' names (values may be
    tokens), the credential's header and name (its value masked) and the body's size."""
    lines = [f"{method} {uri}"] + [f"{name}: (set)" for name in headers]
    if auth:
        lines.append(f"{auth.header}: {MASK} (credential {auth.name!r})")
    if body is not None:
        lines.append(f"({len(body)} bytes of body)")
    return "\n".join(lines)


def _credential(name: str | None) -> Credential | None:
    """The ``HARBOR_CREDENTIALS`` entry ``name`` (None for no name). Raises StepFailed if
    there is none, or if it is malformed (the settings refuse that at start; a test or a
    changed setting may not)."""
    if not name:
        return None
    credentials = settings.HARBOR_CREDENTIALS
    if name not in credentials:
        raise StepFailed(f"No credential named {name!r} is configured (HARBOR_CREDENTIALS).")
    try:
        return credential(name, credentials[name])
    except ImproperlyConfigured as exc:
        raise StepFailed(str(exc)) from exc


def _log_response(
    context: StepContext, uri: str, response: requests.Response, hidden: tuple[str, ...]
) -> None:
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
    context.write_log(uri, "http.head", mask_secrets(head, context.variables, hidden))
    context.write_log(
        uri, "http.body", mask_secrets(response.text[:MAX_LOGGED_BODY], context.variables, hidden)
    )
