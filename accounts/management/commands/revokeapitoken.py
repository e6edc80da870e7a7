"""``manage.py revokeapitoken (--id ID | --name NAME | --token TOKEN) [--user USERNAME]
[--all]``: revoke API tokens; a revoked token gets 401 from then on."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import QuerySet
from django.utils import timezone

from accounts.management.commands.listapitokens import format_token
from accounts.models import ApiToken, hash_token


class Command(BaseCommand):
    help = (
        "Revoke an API token, chosen by its id (listapitokens shows it), its name, or the "
        "token itself (only its SHA-256 is stored, so part of a token cannot identify it). "
        "When several active tokens match, name them more precisely or pass --all."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--id", type=int, help="The token's id.")
        parser.add_argument("--name", help="The token's name.")
        parser.add_argument("--token", help="The token itself (api-…).")
        parser.add_argument("--user", help="Only this user's tokens.")
        parser.add_argument(
            "--all", action="store_true", help="Revoke every matching token, not just one."
        )

    def handle(self, *args, **options) -> None:
        tokens = matching_tokens(options)
        found = list(tokens.select_related("user").order_by("id"))
        if not found:
            raise CommandError("No active API token matches.")
        if len(found) > 1 and not options["all"]:
            listing = "\n".join(format_token(token) for token in found)
            raise CommandError(
                f"{len(found)} active tokens match; pass --all to revoke them all, or choose "
                f"one by --id:\n{listing}"
            )
        now = timezone.now()
        # Conditional, so a token revoked meanwhile keeps its first revocation time.
        ApiToken.objects.filter(pk__in=[t.pk for t in found], revoked__isnull=True).update(
            revoked=now
        )
        for token in found:
            name = token.name or "unnamed"
            self.stdout.write(f"Revoked token {token.pk} ({name}) of {token.user.username}.")


def matching_tokens(options: dict) -> QuerySet:
    """The active tokens the options select; CommandError if no selector is given."""
    if options["id"] is None and not options["name"] and not options["token"]:
        raise CommandError("Choose the token to revoke with --id, --name or --token.")
    tokens = ApiToken.objects.active()
    if options["id"] is not None:
        tokens = tokens.filter(pk=options["id"])
    if options["name"]:
        tokens = tokens.filter(name=options["name"])
    if options["token"]:
        tokens = tokens.filter(token_hash=hash_token(options["token"].strip()))
    if options["user"]:
        tokens = tokens.filter(user__username=options["user"])
    return tokens
