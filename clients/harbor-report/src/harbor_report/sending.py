"""Sending one message to Harbor's ``POST /api/v1/sendmessage``, retried through connection
errors and the answers that ask for it (429, 502, 503, 504), honouring ``Retry-After``.

Every attempt carries the same body, idempotency key included, so however many attempts
reach Harbor, it stores the message once; a repeat is answered ``duplicate``.
"""

import logging
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter, Retry

from harbor_report import __version__

logger = logging.getLogger("harbor_report")
USER_AGENT = f"harbor-report/{__version__}"
RETRY_STATUSES = (429, 502, 503, 504)


class SendError(Exception):
    """Harbor could not be reached, or kept answering that it is unavailable."""


@dataclass(frozen=True)
class Answer:
    """Harbor's answer: its HTTP status and JSON body (``{}`` if it sent none)."""

    status_code: int
    body: dict


class LoggedRetry(Retry):
    """urllib3's retry policy, saying on the log why each attempt is made again."""

    def increment(self, method=None, url=None, response=None, error=None, *args, **kwargs):
        retry = super().increment(method, url, response, error, *args, **kwargs)
        why = f"Harbor answered HTTP {response.status}" if response is not None else repr(error)
        left = retry.total + 1
        logger.warning("%s; trying again (%d attempt%s left)", why, left, "" if left == 1 else "s")
        return retry


def send_message(
    base_url: str, authorization: str, body: dict, attempts: int = 5, timeout: float = 60
) -> Answer:
    """POST ``body`` to ``<base_url>/api/v1/sendmessage`` with the ``Authorization`` header
    value ``authorization``; make up to ``attempts`` attempts, ``timeout`` seconds each.
    Waits ``Retry-After`` seconds where Harbor gives them, else 0, 2, 4, 8… s (at most 120).
    Returns the last answer; raises SendError when no attempt got one."""
    session = requests.Session()
    retry = LoggedRetry(
        total=attempts - 1,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # POST too: the idempotency key makes a repeat harmless
        backoff_factor=1,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    url = base_url.rstrip("/") + "/api/v1/sendmessage"
    headers = {"Authorization": authorization, "User-Agent": USER_AGENT}
    try:
        response = session.post(url, json=body, headers=headers, timeout=timeout)
    except requests.RequestException as error:
        raise SendError(
            f"could not reach Harbor at {url} in {attempts} attempts: {error}"
        ) from error
    return Answer(response.status_code, _json(response))


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
