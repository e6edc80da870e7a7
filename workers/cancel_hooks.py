"""Cancel hooks (Beyond Harbormaster, docs/design.md §5): telling an outside system that the
build it works for was aborted or restarted.

A step may configure ``on_abort: {url, method}``; the URL takes the target's variables,
URI-encoded. Each attempt is recorded in the target's log (source: the URL, type
``cancel-hook``), so people can see whether the outside system was told.
"""

import requests
from django.conf import settings

from builds import logs
from builds.egress import refuse_disallowed_redirect, url_refusal
from builds.models import BuildTarget
from builds.secrets import mask_secrets
from builds.variables import substitute, target_variables, uri_escape


def call_cancel_hook(target: BuildTarget, attempt: int) -> bool:
    """Make attempt number ``attempt`` (1-based) to call ``target``'s cancel hook.

    Returns True when the outside system answered 2xx; False on any other answer or a
    transport error. Raises KeyError if the target has no ``on_abort``, UnknownVariable if
    its URL names an unknown variable.
    """
    hook = target.config["on_abort"]
    variables = target_variables(target)
    url = substitute(hook["url"], variables, uri_escape)
    method = hook.get("method", "POST").upper()
    ok, outcome = _request(method, url)
    shown = mask_secrets(url, variables)
    logs.write(
        target,
        shown,
        "cancel-hook",
        mask_secrets(f"attempt {attempt}: {method} {shown}: {outcome}", variables),
    )
    return ok


def _request(method: str, url: str) -> tuple[bool, str]:
    """Make the request if ``HARBOR_HTTP_ALLOWED_URLS`` allows it: (answered 2xx, what
    happened)."""
    refusal = url_refusal(url)
    if refusal:
        return False, f"not sent: {refusal}"
    try:
        response = requests.request(
            method,
            url,
            timeout=settings.HARBOR_HTTP_TIMEOUT,
            hooks={"response": refuse_disallowed_redirect},
        )
    except requests.RequestException as exc:
        return False, f"failed: {exc}"
    return 200 <= response.status_code < 300, f"HTTP {response.status_code} {response.reason}"
