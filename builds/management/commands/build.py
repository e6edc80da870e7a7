"""``manage.py build PLAN``: start a build of a plan, and optionally follow it to the end.

With ``--wait`` it prints each change of the build and its targets as it happens (see
``builds.progress``), then one last line saying how the build ended. Exit status with
``--wait``: 0 if the build passed, 1 if it ended any other way, 2 if ``--timeout`` ran out
first. ``--json`` prints the build as ``GET /api/v1/builds/<id>`` shows it (at the end, with
``--wait``) as the only output on stdout; the other lines go to stderr then.
"""

import json
import re
import time

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from builds import engine, progress
from builds.models import Build, BuildPlan
from messages_api.shapes import build_shape

PARAMETER_NAME = re.compile(r"[a-z0-9._/-]+")
POLL_SECONDS = 0.2


class Command(BaseCommand):
    people_on_stderr = False  # with --json, stdout carries the JSON alone
    help = "Start a build of PLAN (name or PHID); print its id and URL, and follow it with --wait."

    def add_arguments(self, parser):
        parser.add_argument("plan", help="the plan's name or PHID")
        parser.add_argument("--repository", default="", help="repository URI of the buildable")
        parser.add_argument("--ref", default="", help="branch or tag being built")
        parser.add_argument("--commit", default="", help="commit hash being built")
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="K=V",
            help="a build parameter, available to steps as ${build.param.K} (repeatable)",
        )
        parser.add_argument(
            "--wait", action="store_true", help="print each status change until the build ends"
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="with --wait: give up after this many seconds (exit status 2)",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="print the build as the REST API shows it, as the only output on stdout",
        )

    def handle(self, *args, **options):
        plan = find_plan(options["plan"])
        parameters = parse_parameters(options["param"])
        buildable = engine.find_or_create_buildable(
            repository=options["repository"], ref=options["ref"], commit=options["commit"]
        )
        try:
            build = engine.start_build(plan, buildable, parameters=parameters)
        except engine.PlanNotRunnable as exc:  # disabled since find_plan looked
            raise CommandError(str(exc)) from exc
        self.people_on_stderr = options["json"]
        self.say(f"Started build {build.id} ({build.phid}) of plan {plan.name}")
        self.say(build.absolute_url())
        status = self.follow(build.id, options["timeout"]) if options["wait"] else 0
        if options["json"]:
            self.stdout.write(json.dumps(build_shape(build.id), indent=2))
        if status:
            raise SystemExit(status)

    def follow(self, build_id: int, timeout: float | None) -> int:
        """Print every change of the build and its targets until the build is complete, then
        a last line saying how it ended; return the exit status (0 passed, 1 ended
        otherwise, 2 still running at ``timeout`` seconds).

        Each poll reads the build and then its events afresh (autocommit: every query sees
        what the workers have committed).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: set[int] = set()
        while True:
            # The build first: once it is complete, the events read next include every
            # change up to its completion, committed with it.
            build = Build.objects.get(pk=build_id)
            for event in progress.new_events(build_id, seen):
                for line in progress.event_lines(event, build.date_created):
                    self.say(line)
            if build.is_complete:
                self.say(progress.ending_line(build))
                return 0 if build.status == Build.Status.PASSED else 1
            if deadline is not None and time.monotonic() >= deadline:
                self.say(f"build {build_id} still {build.status} after {timeout:g} s (--timeout)")
                return 2
            time.sleep(POLL_SECONDS)

    def say(self, line: str) -> None:
        """Print a line for people: on stdout, or on stderr when stdout carries --json."""
        stream: OutputWrapper = self.stderr if self.people_on_stderr else self.stdout
        stream.write(line, style_func=str)  # not in stderr's error colour
        stream.flush()


def find_plan(name_or_phid: str) -> BuildPlan:
    """Return the active plan with this name or PHID; ``CommandError`` if none."""
    field = "phid" if name_or_phid.startswith("PHID-") else "name"
    plan = BuildPlan.objects.filter(**{field: name_or_phid}).first()
    if plan is None:
        raise CommandError(f"No build plan {name_or_phid!r}; import one with importplan")
    if plan.status != BuildPlan.Status.ACTIVE:
        raise CommandError(f"Build plan {plan.name!r} is {plan.status}; it cannot be built")
    return plan


def parse_parameters(pairs: list[str]) -> dict[str, str]:
    """Turn ``["k=v", ...]`` into a dict; names follow variable names (``[a-z0-9._/-]+``)."""
    parameters = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not PARAMETER_NAME.fullmatch(name):
            raise CommandError(f"--param {pair!r}: expected NAME=VALUE, NAME in [a-z0-9._/-]+")
        parameters[name] = value
    return parameters
