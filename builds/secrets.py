"""Per-target callback secrets (docs/design.md §5: "a per-target callback secret lets an outside
system report on its own target only, without a user's API token").

A target's secret is derived, never stored: the HMAC-SHA256 of the target's PHID under
``SECRET_KEY``, truncated to 24 bytes and written in URL-safe base64 (32 characters from
``[A-Za-z0-9_-]``, so it goes into a URI unchanged). Changing ``SECRET_KEY`` changes every
secret. Steps see it as the variable ``${target.secret}``; a request carrying
``Authorization: Harbor-Target-Secret <secret>`` may send messages to that one target.
Anything that shows a substituted URI or header passes it through ``mask_secrets`` first.

A step's configuration may hold secrets of its own (an ``Authorization`` header, a token in
a URI). Everything that shows a configuration (pages, the admin) passes it through
``mask_config`` first, which hides values by their name, by their shape and by value.
"""

import base64
import hashlib
import hmac
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from django.conf import settings

SECRET_VARIABLES = ("target.secret",)
MASK = "********"
SECRET_BYTES = 24
# Keeps these HMACs apart from any other use of SECRET_KEY (Django signs sessions with it).
PURPOSE = b"harbor.target-secret\x00"

# A name's words, split at punctuation and camelCase ("X-Api-Key", "apiKey", "api_key" are
# all "api" "key"); a name is sensitive if a word holds one of SENSITIVE_PARTS or is one of
# SENSITIVE_WORDS ("key" but not "monkey"). Better hide a harmless value than show a secret.
NAME_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
SENSITIVE_PARTS = (
    "passw", "secret", "token", "credential", "private", "authoriz", "authentic", "cookie",
    "session", "signature",
)  # fmt: skip
SENSITIVE_WORDS = {"key", "keys", "apikey", "auth", "pwd", "sig"}
# A value that is a credential whatever its name: an HTTP authorization value.
CREDENTIAL_VALUE = re.compile(r"^\s*(?:bearer|basic|digest|token)\s+\S", re.IGNORECASE)
# In a URI: the password of its user information, and query parameters named like secrets.
URI_PASSWORD = re.compile(r"(?P<keep>[a-z][a-z0-9+.-]*://[^/?#@:\s]*:)[^/?#@\s]+(?=@)", re.I)
QUERY_PARAMETER = re.compile(r"(?P<keep>[?&;](?P<name>[^=&;#\s]+)=)(?P<value>[^&;#\s]*)")


def target_secret(target_phid: str) -> str:
    """The callback secret of the target ``target_phid`` (32 URL-safe characters)."""
    digest = hmac.new(
        settings.SECRET_KEY.encode("utf-8"), PURPOSE + target_phid.encode("utf-8"), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:SECRET_BYTES]).decode("ascii")


def is_target_secret(secret: str, target_phid: str) -> bool:
    """Whether ``secret`` is the callback secret of ``target_phid`` (constant-time compare)."""
    return hmac.compare_digest(secret.encode("utf-8"), target_secret(target_phid).encode("utf-8"))


def mask_secrets(text: str, variables: Mapping[str, str | None], also: Iterable[str] = ()) -> str:
    """``text`` with every secret variable's value (as given, or URI-encoded as a URI or a
    form would carry it), and each of ``also`` (a credential's secrets), replaced by
    ``********``. Use it on anything that shows a substituted URI, header or error message."""
    # Longest first, so a secret that holds another is masked whole.
    for form in sorted(secret_forms(variables) | {value for value in also if value}, key=len)[::-1]:
        text = text.replace(form, MASK)
    return text


def secret_forms(variables: Mapping[str, str | None]) -> set[str]:
    """Every form in which a secret variable's value may appear in text (as given, or
    URI-encoded as a URI or a form would carry it)."""
    forms = set()
    for name in SECRET_VARIABLES:
        value = variables.get(name)
        if value:
            forms |= {value, quote(value, safe="/"), quote_plus(value)}
    return forms


def is_sensitive_name(name: str) -> bool:
    """Whether a setting, header or parameter called ``name`` holds a secret by its name
    (``Authorization``, ``api_token``, ``X-Api-Key``, ``password``...)."""
    words = [word.lower() for word in NAME_WORD.findall(name)]
    return any(
        word in SENSITIVE_WORDS or any(part in word for part in SENSITIVE_PARTS) for word in words
    )


def mask_config(value: Any, secrets: Collection[str] = ()) -> Any:
    """A copy of ``value`` (a step's configuration: nested dicts, lists and JSON scalars)
    with every secret-looking value replaced by ``MASK``: the whole value of a key named
    like a secret (``is_sensitive_name``, nested dicts included), a string that is an HTTP
    authorization value (``Bearer …``), the password in a URI and its query parameters
    named like secrets, and each of ``secrets`` (e.g. the target's callback secret)
    wherever it appears inside a string. Dict keys are kept as they are."""
    if isinstance(value, dict):
        return {
            name: MASK if is_sensitive_name(str(name)) else mask_config(item, secrets)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [mask_config(item, secrets) for item in value]
    if isinstance(value, str):
        return mask_text(value, secrets)
    return value


def mask_text(text: str, secrets: Collection[str] = ()) -> str:
    """``text`` with what ``mask_config`` hides in a string replaced by ``MASK``."""
    if CREDENTIAL_VALUE.match(text):
        return MASK
    text = URI_PASSWORD.sub(rf"\g<keep>{MASK}", text)
    text = QUERY_PARAMETER.sub(_mask_query_parameter, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _mask_query_parameter(match: re.Match) -> str:
    if is_sensitive_name(match["name"]) and match["value"]:
        return match["keep"] + MASK
    return match[0]


@dataclass(frozen=True)
class TargetSecretHolder:
    """Whoever presented a target callback secret: the REST API's ``request.user`` for such
    a request. It may send messages to the one target whose secret it holds, and nothing
    else; it is not a user, so messages it sends have no author."""

    secret: str
    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    username = "target-secret"

    def holds_secret_of(self, target_phid: str) -> bool:
        """Whether the presented secret is ``target_phid``'s."""
        return is_target_secret(self.secret, target_phid)

    def __repr__(self) -> str:  # never print the secret itself
        return "TargetSecretHolder(secret=********)"
