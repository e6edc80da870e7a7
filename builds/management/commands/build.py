"""``manage.py build PLAN``: start a build of a plan, and optionally follow it to the end.

Exit status with ``--wait``: 0 if the build passed, 1 if it ended any other way, 2 if
``--timeout`` ran out first.
"""

import re
import time

from django.core.management.base import BaseCommand, CommandError

from builds import engine
from builds.models import Build, BuildPlan, BuildTarget

PARAMETER_NAME = re.compile(r"[a-z0-9._/-]+")
POLL_SECONDS = 0.2


class Command(BaseCommand):
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
        self.stdout.write(f"Started build {build.id} ({build.phid}) of plan {plan.name}")
        self.stdout.write(build.absolute_url())
        if options["wait"]:
            self.stdout.flush()
            self.follow(build.id, options["timeout"])

    def follow(self, build_id: int, timeout: float | None) -> None:
        """Poll the database until the build is complete, printing every status change.

        Each poll reads the build and its targets fresh (autocommit: every query sees what
        the workers have committed). Raises ``CommandError`` with return code 1 if the build
        ends other than passed, and 2 on timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: dict[str, str] = {}
        while True:
            # The build is read first so that, once it is complete, the targets read next are
            # at least as fresh. Its completion is printed after the targets' changes that
            # caused it; any other change of the build before the targets it starts.
            status = Build.objects.values_list("status", flat=True).get(pk=build_id)
            targets = list(BuildTarget.objects.filter(build_id=build_id).order_by("id"))
            if status not in Build.COMPLETE:
                self.report(seen, "build", status)
            for target in targets:
                self.report(seen, target_label(target), target.status)
            self.report(seen, "build", status)
            if status in Build.COMPLETE:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise CommandError(
                    f"Build {build_id} still {status} after {timeout:g} s", returncode=2
                )
            time.sleep(POLL_SECONDS)
        if status != Build.Status.PASSED:
            raise CommandError(f"Build {build_id} ended {status}", returncode=1)
        self.stdout.write(f"Build {build_id} passed")

    def report(self, seen: dict[str, str], label: str, status: str) -> None:
        """Print ``label``'s status if it is new or changed since the last poll."""
        before = seen.get(label)
        if before == status:
            return
        seen[label] = status
        change = status if before is None else f"{before} -> {status}"
        self.stdout.write(f"{label}: {change}")
        self.stdout.flush()


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


def target_label(target: BuildTarget) -> str:
    """``target <step key>``, with the generation once a restart has made more than one."""
    if target.generation > 1:
        return f"target {target.step_key} (generation {target.generation})"
    return f"target {target.step_key}"
