"""Is a webhook from the forge it claims? Each forge type's own check, on the raw body.

- GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body, keyed by the secret>``;
- Gitea and Forgejo: ``X-Gitea-Signature: <hex HMAC-SHA256 of the body>`` (Forgejo sends
  it beside its own ``X-Forgejo-Signature``, the same value);
- GitLab: ``X-Gitlab-Token: <the secret itself>`` (GitLab signs nothing).

Every comparison is constant-time (``hmac.compare_digest``), so the time an answer takes
says nothing about how much of a guess was right. ``VERIFIERS`` maps the forge type to its
check; the view calls it before anything of the request is parsed or stored.
"""

import hashlib
import hmac
from collections.abc import Callable, Mapping

from forges.config import Forge


def verify_github(forge: Forge, headers: Mapping[str, str], body: bytes) -> bool:
    """True if ``X-Hub-Signature-256`` is ``sha256=`` and the body's HMAC under the
    forge's webhook secret."""
    return _same(
        headers.get("X-Hub-Signature-256"), "sha256=" + hmac_sha256_hex(forge.webhook_secret, body)
    )


def verify_gitea(forge: Forge, headers: Mapping[str, str], body: bytes) -> bool:
    """True if ``X-Gitea-Signature`` is the body's hex HMAC under the webhook secret."""
    return _same(headers.get("X-Gitea-Signature"), hmac_sha256_hex(forge.webhook_secret, body))


def verify_gitlab(forge: Forge, headers: Mapping[str, str], body: bytes) -> bool:
    """True if ``X-Gitlab-Token`` is the webhook secret (the body is not signed)."""
    return _same(headers.get("X-Gitlab-Token"), forge.webhook_secret)


VERIFIERS: dict[str, Callable[[Forge, Mapping[str, str], bytes], bool]] = {
    "github": verify_github,
    "gitea": verify_gitea,
    "gitlab": verify_gitlab,
}


def hmac_sha256_hex(key: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` under ``key``: what GitHub, Gitea and Harbor's own
    notifications (``X-Harbor-Signature-256``) sign a body with."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def _same(given: str | None, expected: str) -> bool:
    """Constant-time equality of a header's value and the expected one; a missing header
    is never equal. Compared as bytes: ``compare_digest`` refuses non-ASCII text, and a
    header may hold anything."""
    if not given:
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected.encode())
