"""Authentication for the REST API: ``Authorization: Bearer api-…`` for users, and
``Authorization: Harbor-Target-Secret <secret>`` for outside systems reporting on one target.

Tokens are looked up by their SHA-256 (``ApiToken.find_active``); the clear token is never
stored. Conduit's ``api.token`` has the same shape, so one token serves both APIs. A target
secret is not looked up at all: it authenticates as a ``TargetSecretHolder``, and whether it
is the receiver's secret is decided by ``builds.permissions`` when the message arrives.
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts.models import ApiToken, User
from builds.secrets import TargetSecretHolder

KEYWORD = "Bearer"
TARGET_SECRET_KEYWORD = "Harbor-Target-Secret"
# last_used is for people reviewing their tokens, not an audit log: one write a minute per
# token keeps a busy CI client from turning every message into an extra UPDATE.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class BearerTokenAuthentication(BaseAuthentication):
    """Authenticate a request by its ``Authorization: Bearer <token>`` header.

    Returns ``(user, token_row)``; returns None when the request carries no bearer token (so
    the permission check answers 401 ``not_authenticated``); raises ``AuthenticationFailed``
    (401) for a malformed header or a token that is unknown, revoked, or whose user is
    inactive.
    """

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            clear_token = parts[1].decode("ascii")
        except UnicodeDecodeError as error:
            raise AuthenticationFailed("The API token contains invalid characters.") from error
        token = ApiToken.find_active(clear_token)
        if token is None or not token.user.is_active:
            raise AuthenticationFailed("The API token is unknown or has been revoked.")
        touch_last_used(token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        """The ``WWW-Authenticate`` value; having one makes DRF answer 401, not 403."""
        return f'{KEYWORD} realm="api"'


def touch_last_used(token: ApiToken) -> None:
    """Record that ``token`` was used, at most once per ``LAST_USED_RESOLUTION``.

    The check on the row read during lookup skips the write on most requests; the condition
    in the UPDATE keeps concurrent requests from each writing it.
    """
    now = timezone.now()
    stale_before = now - LAST_USED_RESOLUTION
    if token.last_used is not None and token.last_used >= stale_before:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used__isnull=True) | Q(last_used__lt=stale_before)
    ).update(last_used=now)
    token.last_used = now


class TargetSecretAuthentication(BaseAuthentication):
    """Authenticate a request by ``Authorization: Harbor-Target-Secret <secret>``.

    Returns ``(TargetSecretHolder(secret), None)``, or None when the header has another
    scheme. Views that accept it (sending messages) let the engine check the secret against
    the receiver (403 for any other target); every other view answers 403.
    """

    def authenticate(self, request: Request) -> tuple[TargetSecretHolder, None] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != TARGET_SECRET_KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(
                f"Malformed Authorization header: expected '{TARGET_SECRET_KEYWORD} <secret>'."
            )
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError as error:
            raise AuthenticationFailed("The target secret contains invalid characters.") from error
        return TargetSecretHolder(secret), None
