"""``manage.py buildcommand BUILD COMMAND``: restart, pause, resume or abort a build, or
``rerun --step KEY`` one of its steps with the steps depending on it."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from builds import engine
from builds.models import Build, BuildMessage
from builds.numbers import ascii_int


class Command(BaseCommand):
    help = (
        "Send a command (restart, pause, resume, abort, or rerun --step KEY) to a build, "
        "by id or PHID."
    )

    def add_arguments(self, parser):
        parser.add_argument("build", help="build id or PHID")
        parser.add_argument("command", choices=sorted(BuildMessage.COMMANDS))
        parser.add_argument("--user", help="username recorded as the command's author")
        parser.add_argument("--step", help="for rerun: the key of the step to run again")

    def handle(self, *args, build: str, command: str, user: str | None, step=None, **options):
        if (command == "rerun") != (step is not None):
            raise CommandError("--step is needed with rerun, and only with rerun.")
        target = _find_build(build)
        author = _find_user(user) if user else None
        try:
            receipt = engine.receive_message(target.phid, command, author=author, step_key=step)
        except (engine.MessageRefused, engine.InvalidMessage) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Sent {command} to build {target.pk} as message {receipt.message.pk}; "
            f"it applies on the build's next engine pass. {target.absolute_url()}"
        )


def _find_build(value: str) -> Build:
    pk = ascii_int(value)
    lookup = {"pk": pk} if pk is not None else {"phid": value}
    build = Build.objects.filter(**lookup).first()
    if build is None:
        raise CommandError(f"No build {value!r}.")
    return build


def _find_user(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user {username!r}.")
    return user
