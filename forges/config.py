"""Configured forges (the ``HARBOR_FORGES`` setting): where each forge's API is, the token
Harbor uses there, and the secret its webhooks are signed with.

``HARBOR_FORGES`` is a JSON object mapping a forge's name (the ``<name>`` of its webhook
URL, ``/hooks/<name>``, and the ``forge:`` of plan triggers) to::

    {"type": "github" | "gitlab" | "gitea",
     "url": "<API base URL>",        # GitHub: https://api.github.com unless given
     "token": "<API token>",
     "webhook_secret": "<secret>"}

GitHub Enterprise's URL is ``https://host/api/v3``, GitLab's ``https://host/api/v4``,
Gitea's and Forgejo's ``https://host/api/v1``. The settings check every entry when Harbor
starts (``load_forges``), so a malformed one stops web and workers at once with a message
naming the entry and the field, never a value. Plain Python, no Django apps:
``harbor.settings`` imports it.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

FORGE_TYPES = ("github", "gitlab", "gitea")
# Only GitHub has one public API everybody means; a GitLab or Gitea is somebody's host.
DEFAULT_URLS = {"github": "https://api.github.com"}
FIELDS = ("type", "url", "token", "webhook_secret")
# The name is a path segment of the webhook URL and a word in plan YAML.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Forge:
    """One configured forge. ``url`` is the API's base URL without a trailing slash.
    ``token`` and ``webhook_secret`` are left out of ``repr``, so neither reaches a log, a
    debug page or a traceback's locals by way of this object."""

    name: str
    type: str
    url: str
    token: str = field(repr=False)
    webhook_secret: str = field(repr=False)


def load_forges(text: str) -> dict[str, Forge]:
    """``HARBOR_FORGES`` (JSON text) as ``{name: Forge}``. Raises ImproperlyConfigured
    naming the first malformed entry and what is wrong with it (or saying the text is not
    a JSON object), never quoting a token or secret."""
    try:
        entries = json.loads(text)
    except ValueError:
        raise ImproperlyConfigured("HARBOR_FORGES is not valid JSON.") from None
    if not isinstance(entries, dict):
        raise ImproperlyConfigured("HARBOR_FORGES must be a JSON object of named forges.")
    return {name: forge(name, entry) for name, entry in entries.items()}


def forge(name: str, entry: Any) -> Forge:
    """The forge ``name`` made from its ``HARBOR_FORGES`` ``entry``. Raises
    ImproperlyConfigured naming the entry and the problem: a bad name, an unknown type, a
    missing, empty or unexpected field, or a URL that is not http(s)://host…"""
    where = f"HARBOR_FORGES entry {name!r}"
    if not NAME.fullmatch(name):
        raise ImproperlyConfigured(
            f"{where}: a forge's name is 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (it is part of the webhook URL)."
        )
    if not isinstance(entry, dict):
        raise ImproperlyConfigured(f"{where} must be a JSON object.")
    unexpected = sorted(set(entry) - set(FIELDS))
    if unexpected:
        raise ImproperlyConfigured(
            f"{where} has unexpected fields {unexpected}; expected: " + ", ".join(FIELDS)
        )
    kind = entry.get("type")
    if kind not in FORGE_TYPES:
        given = f"has type {kind!r}" if kind is not None else "has no 'type'"
        raise ImproperlyConfigured(f"{where} {given}; it must be one of: " + ", ".join(FORGE_TYPES))
    values = {key: _text(where, entry, key) for key in ("token", "webhook_secret")}
    url = _api_url(where, kind, entry.get("url", DEFAULT_URLS.get(kind)))
    return Forge(name=name, type=kind, url=url, **values)


def _text(where: str, entry: dict, key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ImproperlyConfigured(f"{where} needs '{key}', a non-empty string.")
    if "\r" in value or "\n" in value:
        raise ImproperlyConfigured(f"{where}: '{key}' holds a line break.")
    return value


def _api_url(where: str, kind: str, url: Any) -> str:
    if url is None:
        raise ImproperlyConfigured(
            f"{where} needs 'url', the {kind} API's base URL (e.g. https://host/api/"
            + ("v4" if kind == "gitlab" else "v1")
            + ")."
        )
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(f"{where}: 'url' must be an http(s)://host/… URL.")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ImproperlyConfigured(
            f"{where}: 'url' must be a base URL, without credentials, query or fragment."
        )
    return url.rstrip("/")
