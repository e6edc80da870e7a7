"""Per-target callback secrets (DESIGN.md §5: "a per-target callback secret lets an outside
system report on its own target only, without a user's API token").

A target's secret is derived, never stored: the HMAC-SHA256 of the target's PHID under
``SECRET_KEY``, truncated to 24 bytes and written in URL-safe base64 (32 characters from
``[A-Za-z0-9_-]``, so it goes into a URI unchanged). Changing ``SECRET_KEY`` changes every
secret. Steps see it as the variable ``${target.secret}``; a request carrying
``Authorization: Harbor-Target-Secret <secret>`` may send messages to that one target.
Anything that shows a substituted URI or header passes it through ``mask_secrets`` first.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from django.conf import settings

SECRET_VARIABLES = ("target.secret",)
MASK = "********"
SECRET_BYTES = 24
# Keeps these HMACs apart from any other use of SECRET_KEY (Django signs sessions with it).
PURPOSE = b"harbor.target-secret\x00"


def target_secret(target_phid: str) -> str:
    """The callback secret of the target ``target_phid`` (32 URL-safe characters)."""
    digest = hmac.new(
        settings.SECRET_KEY.encode("utf-8"), PURPOSE + target_phid.encode("utf-8"), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:SECRET_BYTES]).decode("ascii")


def is_target_secret(secret: str, target_phid: str) -> bool:
    """Whether ``secret`` is the callback secret of ``target_phid`` (constant-time compare)."""
    return hmac.compare_digest(secret.encode("utf-8"), target_secret(target_phid).encode("utf-8"))


def mask_secrets(text: str, variables: Mapping[str, str | None]) -> str:
    """``text`` with every secret variable's value (as given, or URI-encoded as a URI or a
    form would carry it) replaced by ``********``. Use it on anything that shows a
    substituted URI, header or error message."""
    for form in secret_forms(variables):
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
