"""Named credentials for HTTP steps (the ``HARBOR_CREDENTIALS`` setting), so plans name a
credential instead of holding its secret.

``HARBOR_CREDENTIALS`` is a JSON object mapping a name to one entry:

- ``{"username": "…", "password": "…"}`` (or with ``"type": "basic"``): HTTP basic auth;
- ``{"type": "bearer", "token": "…"}``: ``Authorization: Bearer <token>``;
- ``{"type": "header", "header": "X-Api-Key", "value": "…"}``: that header with that value.

The settings check every entry when Harbor starts (``load_credentials``), so a malformed
one stops web and workers at once, with a message naming the entry and the field but never
a secret. Plain Python, no Django apps: ``harbor.settings`` imports it.
"""

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

# The fields of each type of entry; each is a non-empty string.
FIELDS = {
    "basic": ("username", "password"),
    "bearer": ("token",),
    "header": ("header", "value"),
}
# An HTTP header name (RFC 9110 "token").
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class Credential:
    """What a credential adds to a request: one header, whose value is the secret.
    ``secrets`` are the values to hide wherever the step shows text (the token, the
    password, the whole header value)."""

    name: str
    header: str
    value: str
    secrets: tuple[str, ...]

    def __repr__(self) -> str:  # never print the secret itself
        return f"Credential(name={self.name!r}, header={self.header!r}, value=********)"


def load_credentials(text: str) -> dict[str, dict[str, Any]]:
    """``HARBOR_CREDENTIALS`` (JSON text) as a dict of entries, each checked by
    ``credential``. Raises ImproperlyConfigured naming the first malformed entry (or saying
    the text is not a JSON object), never quoting a value."""
    try:
        entries = json.loads(text)
    except ValueError:
        raise ImproperlyConfigured("HARBOR_CREDENTIALS is not valid JSON.") from None
    if not isinstance(entries, dict):
        raise ImproperlyConfigured("HARBOR_CREDENTIALS must be a JSON object of named entries.")
    for name, entry in entries.items():
        credential(name, entry)
    return entries


def credential(name: str, entry: Any) -> Credential:
    """The credential ``name`` made from its ``HARBOR_CREDENTIALS`` ``entry``. Raises
    ImproperlyConfigured naming the entry and what is wrong with it (an unknown type, a
    missing, empty or unexpected field, a line break in a header), never a value."""
    where = f"HARBOR_CREDENTIALS entry {name!r}"
    if not isinstance(entry, dict):
        raise ImproperlyConfigured(f"{where} must be a JSON object.")
    kind = entry.get("type", "basic")
    if kind not in FIELDS:
        raise ImproperlyConfigured(
            f"{where} has the unknown type {kind!r}; expected one of: " + ", ".join(FIELDS)
        )
    _check_fields(where, entry, FIELDS[kind])
    if kind == "basic":
        pair = f"{entry['username']}:{entry['password']}".encode()
        value = "Basic " + base64.b64encode(pair).decode("ascii")
        return Credential(name, "Authorization", value, (value, entry["password"]))
    if kind == "bearer":
        value = f"Bearer {entry['token']}"
        return Credential(name, "Authorization", value, (value, entry["token"]))
    if not HEADER_NAME.fullmatch(entry["header"]):
        raise ImproperlyConfigured(f"{where}: 'header' is not a valid HTTP header name.")
    return Credential(name, entry["header"], entry["value"], (entry["value"],))


def _check_fields(where: str, entry: dict, fields: tuple[str, ...]) -> None:
    """Each of ``fields`` is a non-empty string without a line break, and nothing else
    but ``type`` is set (a misspelt field would otherwise be ignored)."""
    for field in fields:
        value = entry.get(field)
        if not isinstance(value, str) or not value:
            raise ImproperlyConfigured(f"{where} needs '{field}', a non-empty string.")
        if "\r" in value or "\n" in value:
            raise ImproperlyConfigured(f"{where}: '{field}' holds a line break.")
    unexpected = sorted(set(entry) - {"type", *fields})
    if unexpected:
        raise ImproperlyConfigured(
            f"{where} has unexpected fields {unexpected}; expected: " + ", ".join(fields)
        )
