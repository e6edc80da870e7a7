"""Cancel hooks (Beyond Harbormaster, DESIGN.md §5): telling an outside system that the
build it works for was aborted or restarted.

A step may configure ``on_abort: {url, method}``; the URL takes the target's variables,
URI-encoded. Each attempt is recorded in the target's log (source: the URL, type
``cancel-hook``), so people can see whether the outside system was told.
"""

import requests
from django.conf import settings

from builds import logs
from builds.models import BuildTarget
from builds.variables import substitute, target_variables, uri_escape


def call_cancel_hook(target: BuildTarget, attempt: int) -> bool:
    """Make attempt number ``attempt`` (1-based) to call ``target``'s cancel hook.

    Returns True when the outside system answered 2xx; False on any other answer or a
    transport error. Raises KeyError if the target has no ``on_abort``, UnknownVariable if
    its URL names an unknown variable.
    """
    hook = target.config["on_abort"]
    url = substitute(hook["url"], target_variables(target), uri_escape)
    method = hook.get("method", "POST").upper()
    try:
        response = requests.request(method, url, timeout=settings.HARBOR_HTTP_TIMEOUT)
    except requests.RequestException as exc:
        outcome, ok = f"failed: {exc}", False
    else:
        ok = 200 <= response.status_code < 300
        outcome = f"HTTP {response.status_code} {response.reason}"
    logs.write(target, url, "cancel-hook", f"attempt {attempt}: {method} {url}: {outcome}")
    return ok
