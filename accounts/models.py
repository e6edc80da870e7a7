"""Users and API tokens."""

import functools
import hashlib
import secrets
import string

from django.contrib.auth.models import AbstractUser
from django.db import models

from builds.phids import USER, phid_field
from harbor import named_reads
from harbor.named_reads import column, select_list, table

TOKEN_PREFIX = "api-"
TOKEN_ALPHABET = string.ascii_lowercase + string.digits
TOKEN_LENGTH = 28


class User(AbstractUser):
    """A Django user with a Harbormaster-style PHID (``PHID-USER-…``) for message authors."""

    phid = phid_field(USER)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# The user's fields, as the token lookup reads them beside the token (``active_token_sql``).
USER_FIELDS = [f.name for f in User._meta.concrete_fields]


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked__isnull=True)


class ApiToken(models.Model):
    """A bearer token (``api-`` + 28 lowercase alphanumerics), stored only as its SHA-256.

    A token is shown once, when created by :meth:`issue`; lookups hash the presented value,
    which is fast enough to do on every request (Conduit's tokens have the same shape).
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="api_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name or 'token'} of {self.user}"

    @classmethod
    def issue(cls, user, name: str = "") -> tuple["ApiToken", str]:
        """Create a token for ``user``; return the row and the clear token (never stored)."""
        token = TOKEN_PREFIX + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))
        return cls.objects.create(user=user, token_hash=hash_token(token), name=name), token

    @classmethod
    def find_active(cls, token: str) -> "ApiToken | None":
        """Return the unrevoked token row matching the clear ``token``, with its user, or
        None. Made on every API request, so a named SQL read (``active_token_sql``): building
        this query with the ORM costs several times the CPU PostgreSQL spends answering it
        (README, "Benchmark")."""
        found = named_reads.read(cls, active_token_sql(), [hash_token(token)])
        if not found:
            return None
        api_token = found[0]
        api_token.user = named_reads.joined(api_token, User, "user__", USER_FIELDS)
        return api_token


@functools.cache
def active_token_sql() -> str:
    """The token lookup: the token's columns, then each of its user's as ``user__<field
    name>``; names from the models' ``_meta``."""
    return (
        f"SELECT {select_list(ApiToken, 't')}, {select_list(User, 'u', USER_FIELDS, 'user__')}"
        f" FROM {table(ApiToken)} t JOIN {table(User)} u ON u.id = t.{column(ApiToken, 'user')}"
        f" WHERE t.{column(ApiToken, 'token_hash')} = %s"
        f" AND t.{column(ApiToken, 'revoked')} IS NULL"
    )
