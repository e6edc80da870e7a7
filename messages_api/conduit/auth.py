"""Who is calling: Harbor's API tokens, presented as Conduit presents them.

``__conduit__.token`` (JSON encodings) and ``api.token`` (plain form) carry the same
tokens as the REST API's bearer header (``ApiToken``). Errors follow
``PhabricatorConduitAPIController::authenticateUser``: a bad token is ``ERR-INVALID-AUTH``;
no credentials at all is ``ERR-INVALID-SESSION`` ("Session key is not present.").
"""

from accounts.models import TOKEN_LENGTH, TOKEN_PREFIX, ApiToken, User, hash_token
from messages_api.authentication import touch_last_used
from messages_api.conduit.errors import INVALID_AUTH, INVALID_SESSION, ConduitError

CONDUIT_TOKEN_LENGTH = len(TOKEN_PREFIX) + TOKEN_LENGTH  # 32, as Conduit's


def authenticate(metadata: dict) -> User:
    """Return the active user whose token ``metadata["token"]`` is; raise ConduitError
    (``ERR-INVALID-AUTH``, ``ERR-INVALID-SESSION`` or ``ERR-USER-DISABLED``) otherwise."""
    token = metadata.get("token")
    if isinstance(token, str) and token:
        return _user_for_token(token)
    if metadata.get("access_token"):
        raise ConduitError("Access token does not exist.", INVALID_AUTH)
    if metadata.get("sessionKey"):
        raise ConduitError("Session key is invalid.", INVALID_SESSION)
    raise ConduitError("Session key is not present.", INVALID_SESSION)


def _user_for_token(token: str) -> User:
    if len(token) != CONDUIT_TOKEN_LENGTH:
        raise ConduitError(
            f'API token "{token}" has the wrong length. API tokens should be '
            f"{CONDUIT_TOKEN_LENGTH} characters long.",
            INVALID_AUTH,
        )
    if not token.startswith(TOKEN_PREFIX):
        raise ConduitError(
            f'API token "{token}" has the wrong format. API tokens should begin with '
            f'"{TOKEN_PREFIX}" and be {CONDUIT_TOKEN_LENGTH} characters long.',
            INVALID_AUTH,
        )
    row = ApiToken.find_active(token)
    if row is None:
        if ApiToken.objects.filter(token_hash=hash_token(token)).exists():
            raise ConduitError(
                f'API token "{token}" was previously valid, but has expired.', INVALID_AUTH
            )
        raise ConduitError(f'API token "{token}" is not valid.', INVALID_AUTH)
    if not row.user.is_active:
        raise ConduitError("User account is not activated.", "ERR-USER-DISABLED")
    touch_last_used(row)
    return row.user
