"""``manage.py listapitokens [--user USERNAME] [--revoked]``: the API tokens and their use."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken, User


class Command(BaseCommand):
    help = (
        "List API tokens (active ones unless --revoked): id, user, name, created, last used, "
        "revoked. Tokens are stored only as SHA-256 hashes, so the tokens themselves are not "
        "shown; revoke one by id or name with revokeapitoken."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", help="Only this user's tokens.")
        parser.add_argument(
            "--revoked", action="store_true", help="Include revoked tokens as well."
        )

    def handle(self, *args, user: str | None, revoked: bool, **options) -> None:
        tokens = ApiToken.objects.select_related("user").order_by("id")
        if user is not None:
            if not User.objects.filter(username=user).exists():
                raise CommandError(f"No user is named {user!r}.")
            tokens = tokens.filter(user__username=user)
        if not revoked:
            tokens = tokens.active()
        self.stdout.write("id\tuser\tname\tcreated\tlast used\trevoked")
        for token in tokens:
            self.stdout.write(format_token(token))


def format_token(token: ApiToken) -> str:
    """One tab-separated line: id, user, name, created, last used, revoked (ISO 8601, or
    ``never`` / ``-``)."""
    return "\t".join(
        [
            str(token.pk),
            token.user.username,
            token.name or "-",
            token.created.isoformat(timespec="seconds"),
            token.last_used.isoformat(timespec="seconds") if token.last_used else "never",
            token.revoked.isoformat(timespec="seconds") if token.revoked else "-",
        ]
    )
