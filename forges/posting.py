"""One HTTP request of an outbox row (a commit status or a notification), and what its
answer means for the next attempt.

Called outside every transaction and lock: a forge that is slow to answer holds nothing
but the sending worker. Honours ``HARBOR_HTTP_ALLOWED_URLS`` and follows no redirect (a
redirected POST would turn into a GET elsewhere); waits ``HARBOR_STATUS_TIMEOUT`` seconds.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings

from builds.egress import url_refusal

# Answers worth asking again: the forge was busy, slow or failing, not refusing.
RETRYABLE_CODES = frozenset({408, 429})
# The start of an answer or error kept on the row: enough to see why, never a whole page.
EXCERPT = 500


@dataclass(frozen=True)
class PostResult:
    """What one attempt got: the HTTP ``status_code`` (None without an answer), an
    ``excerpt`` of the answer or the error, whether trying again may help, and the wait
    the forge asked for (``Retry-After``, seconds) if any."""

    status_code: int | None
    excerpt: str
    retryable: bool
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(url: str, headers: dict[str, str], body: bytes) -> PostResult:
    """POST ``body`` (JSON bytes, sent as they are: a signature covers them) to ``url``
    with ``headers``. A URL the allow-list refuses is
    not requested (a final result); connection errors and timeouts are retryable, as are
    408, 429 and 5xx answers; any other answer but a 2xx is final."""
    refusal = url_refusal(url)
    if refusal:
        return PostResult(None, refusal, retryable=False)
    try:
        response = requests.post(
            url,
            data=body,
            headers={
                **headers,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "Harbor",
            },
            timeout=settings.HARBOR_STATUS_TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        # The exception names the host, never the headers that carry the token.
        return PostResult(None, f"{type(exc).__name__}: {exc}"[:EXCERPT], retryable=True)
    code = response.status_code
    return PostResult(
        code,
        response.text[:EXCERPT],
        retryable=code in RETRYABLE_CODES or code >= 500,
        retry_after=retry_after(response.headers.get("Retry-After")),
    )


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` (seconds, or an HTTP date) as seconds from now; None if absent or
    unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
