"""Creating, listing and revoking a user's API tokens (the token page's operations)."""

from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import ApiToken


def create_token(user, name: str) -> tuple[ApiToken, str]:
    """Issue a token named ``name`` for ``user``; return the row and the clear token, which
    is never stored and must be shown to the user now."""
    return ApiToken.issue(user, name=name)


def tokens_of(user) -> QuerySet[ApiToken]:
    """The user's tokens, active ones first, newest first within each group."""
    active_first = F("revoked").desc(nulls_first=True)
    return ApiToken.objects.filter(user=user).order_by(active_first, "-created", "-id")


def revoke_token(user, token_id: int) -> bool:
    """Revoke ``user``'s active token ``token_id`` now. Returns False (changing nothing)
    if it is another user's, unknown, or already revoked. Conditional, so two revokes at
    once record the first time."""
    active = ApiToken.objects.filter(pk=token_id, user=user, revoked__isnull=True)
    return bool(active.update(revoked=timezone.now()))
