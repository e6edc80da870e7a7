"""Make HTTP Request: call an outside system, optionally waiting for its message.

Follows Harbormaster's ``HarbormasterHTTPRequestBuildStepImplementation`` (spec §4): the
``uri`` takes variables, URI-encoded; ``method`` defaults to POST; a ``credential`` adds
HTTP basic auth; any 2xx succeeds and anything else (or no answer within ``timeout``)
fails; the response's status line, headers and body go to the target's log. Beyond it,
``headers`` may be set (values take variables, unescaped).

Config: ``uri`` (required), ``method`` (GET/POST/PUT/DELETE/PATCH), ``headers`` (map),
``credential`` (the name of an entry of the ``HARBOR_CREDENTIALS`` setting, a map of
``{"username", "password"}``, so secrets stay out of plan files), ``timeout`` (seconds).
"""

import requests
from django.conf import settings

from builds.variables import substitute, uri_escape
from workers.steps.base import BuildStepImplementation, StepContext, StepFailed

METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}
MAX_LOGGED_BODY = 1024 * 1024


class HttpStep(BuildStepImplementation):
    """Make an HTTP request to an outside system."""

    name = "http"
    description = "Make an HTTP request; optionally wait for the system's message."
    supports_wait_for_message = True

    def run(self, context: StepContext) -> None:
        config = context.config
        uri = substitute(config["uri"], context.variables, uri_escape)
        method = config.get("method", "POST").upper()
        if method not in METHODS:
            raise StepFailed(f"Unsupported HTTP method {method!r}.")
        headers = {
            str(name): substitute(str(value), context.variables)
            for name, value in config.get("headers", {}).items()
        }
        try:
            response = requests.request(
                method,
                uri,
                headers=headers,
                auth=_credential(config.get("credential")),
                timeout=float(config.get("timeout", settings.HARBOR_HTTP_TIMEOUT)),
            )
        except requests.RequestException as exc:
            context.write_log(uri, "http.error", str(exc))
            raise StepFailed(f"{method} {uri} failed: {exc}") from exc
        _log_response(context, uri, response)
        if not 200 <= response.status_code < 300:
            raise StepFailed(f"{method} {uri} answered HTTP {response.status_code}.")


def _credential(name: str | None) -> tuple[str, str] | None:
    if not name:
        return None
    credentials = getattr(settings, "HARBOR_CREDENTIALS", {})
    if name not in credentials:
        raise StepFailed(f"No credential named {name!r} is configured (HARBOR_CREDENTIALS).")
    entry = credentials[name]
    return entry["username"], entry["password"]


def _log_response(context: StepContext, uri: str, response: requests.Response) -> None:
    head = "\n".join(
        [f"HTTP {response.status_code} {response.reason}"]
        + [f"{name}: {value}" for name, value in response.headers.items()]
    )
    context.write_log(uri, "http.head", head)
    context.write_log(uri, "http.body", response.text[:MAX_LOGGED_BODY])
