"""A plan's ``notify``: webhooks told of its builds' events, checked whole at import.

::

    notify:
      - url: https://chat.example.com/hooks/harbor   # http(s), within HARBOR_HTTP_ALLOWED_URLS
        events: [build.completed, target.waiting]    # NOTIFY_EVENTS
        secret: chat-hook                            # a HARBOR_CREDENTIALS entry: signs the body

Each event is one JSON POST, signed with the entry's secret (its password, token or value):
``forges.notifications`` writes it as an outbox row in the transaction of the change, and
``forges.outbox`` delivers it. A plan stores its webhooks as checked here, a list of
``{"url", "events", "secret"}`` in ``BuildPlan.notify``.
"""

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from builds.egress import NOT_AN_HTTP_URL, shown_origin, url_refusal

# What a webhook may ask for; docs in the README's "Notifications" section.
NOTIFY_EVENTS = (
    "build.started",  # the build began running (pending → building; not a resume)
    "build.completed",  # the build reached any complete status
    "build.passed",
    "build.failed",  # failed or deadlocked
    "build.aborted",
    "build.error",  # Harbor met an error running it
    "target.waiting",  # a target waits for an outside system's message
    "target.failed",
    "target.stuck",  # a target past its step's stuck_after (announced once)
)
NOTIFY_FIELDS = ("url", "events", "secret")
MAX_URL = 2000


def parse_notify(raw: Any, problems: list[str]) -> list[dict]:
    """The plan's ``notify`` (None for none) as stored: ``[{"url", "events", "secret"}]``.
    Each problem is appended to ``problems`` naming the webhook (``notify[0]
    (https://…): unknown event …``): an unknown field, a URL that is not http(s) or not
    allowed by HARBOR_HTTP_ALLOWED_URLS, an unknown or missing event, a secret that names
    no HARBOR_CREDENTIALS entry."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append("notify must be a list of {url, events, secret}")
        return []
    webhooks = []
    for index, item in enumerate(raw):
        found: list[str] = []
        webhook = _webhook(item, found)
        problems += [f"{_label(index, item)}: {problem}" for problem in found]
        if not found:
            webhooks.append(webhook)
    return webhooks


def _webhook(item: Any, problems: list[str]) -> dict:
    if not isinstance(item, dict):
        problems.append("a webhook must be a mapping with url, events and secret")
        return {}
    unknown = sorted(map(str, set(item) - set(NOTIFY_FIELDS)))
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(NOTIFY_FIELDS)}")
    return {
        "url": _url(item.get("url"), problems),
        "events": _events(item.get("events"), problems),
        "secret": _secret(item.get("secret"), problems),
    }


def _url(url: Any, problems: list[str]) -> str:
    # url_refusal decides whether it is an http(s) URL with a host at all (the check the
    # steps' requests pass); a plan says so in its own words, naming the field.
    refusal = url_refusal(url) if isinstance(url, str) else NOT_AN_HTTP_URL
    if refusal == NOT_AN_HTTP_URL:
        # Shown as its origin only: a path or query may carry a token.
        shown = shown_origin(url) if isinstance(url, str) else url
        problems.append(f"url {shown!r} must be an http(s)://host/… URL")
    elif len(url) > MAX_URL:
        problems.append(f"url is longer than {MAX_URL} characters")
    elif (parts := urlsplit(url)).username or parts.password:
        problems.append("url must not hold credentials; the secret signs the body instead")
    elif refusal:
        problems.append(refusal)
    return url


def _events(events: Any, problems: list[str]) -> list[str]:
    known = ", ".join(NOTIFY_EVENTS)
    if not isinstance(events, list) or not events:
        problems.append(f"events must be a non-empty list of: {known}")
        return []
    for event in events:
        if event not in NOTIFY_EVENTS:
            problems.append(f"unknown event {event!r} (known: {known})")
    return list(dict.fromkeys(events))


def _secret(name: Any, problems: list[str]) -> str:
    credentials = settings.HARBOR_CREDENTIALS
    if not isinstance(name, str) or name not in credentials:
        known = ", ".join(sorted(credentials)) or "none; set HARBOR_CREDENTIALS"
        problems.append(
            f"secret {name!r} must name a HARBOR_CREDENTIALS entry (configured: {known})"
        )
    return name


def _label(index: int, item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("url"), str):
        return f"notify[{index}] ({shown_origin(item['url'])})"
    return f"notify[{index}]"
