"""Posting a JUnit report to ``POST /api/v1/junit`` (Harbor's REST API)."""

import uuid
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter, Retry

USER_AGENT = "harbor_report/1"


class ReportError(Exception):
    """Harbor refused the report, or could not be reached (the message says which)."""


@dataclass(frozen=True)
class Sent:
    """Harbor's answer: the stored message and the count of each test result."""

    status_code: int
    body: dict

    @property
    def duplicate(self) -> bool:
        return self.body.get("status") == "duplicate"


def send_report(
    path: str,
    receiver: str,
    base_url: str,
    token: str,
    message_type: str = "auto",
    timeout: float = 60,
    retries: int = 3,
) -> Sent:
    """Send the JUnit file at ``path`` to build target ``receiver``; return Harbor's answer.

    ``message_type`` ``auto`` lets Harbor decide ``pass``/``fail`` from the results; ``work``
    reports partial results. Each call carries a fresh idempotency key, so connection-level
    retries (``retries``) can never store the report twice. Raises ReportError (and OSError if
    the file cannot be read).
    """
    with open(path, "rb") as report:
        document = report.read()
    params = {"receiver": receiver, "type": message_type, "idempotency_key": str(uuid.uuid4())}
    try:
        response = _session(token, retries).post(
            base_url.rstrip("/") + "/api/v1/junit",
            params=params,
            data=document,
            headers={"Content-Type": "application/xml"},
            timeout=timeout,
        )
    except requests.RequestException as error:
        raise ReportError(f"Could not reach Harbor at {base_url}: {error}") from error
    body = _json(response)
    if response.status_code not in (200, 202):
        detail = body.get("detail") or response.text[:500]
        raise ReportError(f"Harbor refused the report (HTTP {response.status_code}): {detail}")
    return Sent(response.status_code, body)


def _session(token: str, retries: int) -> requests.Session:
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT})
    # POST is retried too: the idempotency key makes a repeat harmless.
    retry = Retry(
        total=retries,
        backoff_factor=0.5,
        status_forcelist=(502, 503, 504),
        allowed_methods=None,
    )
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
