"""``manage.py createapitoken USERNAME [--name NAME]``: issue an API token for a user."""

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken, User


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME (creating the user, with no password, if needed). "
        "The token is printed once, as the last line of output; only its SHA-256 is stored."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to tell the token apart.")

    def handle(self, *args, username: str, name: str, **options) -> None:
        user = find_or_create_user(username)
        token, clear_token = ApiToken.issue(user, name=name)
        self.stdout.write(f"Issued token {token.pk} for {user.username}. Keep it secret:")
        self.stdout.write(clear_token)


def find_or_create_user(username: str) -> User:
    """Return the user ``username``, creating it with an unusable password if it is new
    (it signs in with tokens only until someone sets a password). Raises CommandError for a
    name Django would refuse."""
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError as error:
        raise CommandError(f"Invalid username {username!r}: {error.messages[0]}") from error
    return User.objects.create_user(username=username, password=None)
