"""``manage.py importplan FILE.yaml``: create or update a build plan from YAML."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from builds.plan_versions import PlanExists, save_plan_version
from builds.plans import PlanError


class Command(BaseCommand):
    help = (
        "Create or update a build plan (by name) from a YAML file; see docs/design.md §4.2. A plan "
        "with problems is refused with all of them listed, and nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the plan's YAML file")

    def handle(self, *args, **options):
        path = options["file"]
        try:
            # Kept as the plan's next version (no author: Harbor itself), as a change
            # through the API or the plan page is.
            plan, version = save_plan_version(Path(path).read_text(encoding="utf-8"))
        except PlanExists as exc:  # only if another import created it at the same moment
            raise CommandError(f"{path}: plan {exc} was created meanwhile; import again") from exc
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except PlanError as exc:
            raise CommandError(f"{path}: plan refused{_listed(exc.problems)}") from exc
        count = plan.steps.count()
        noun = "step" if count == 1 else "steps"
        self.stdout.write(
            f"Imported plan {plan.name} ({plan.phid}) with {count} {noun}, version {version.number}"
        )


def _listed(problems: list[str]) -> str:
    """The end of the refusal: the one problem after a colon, or how many there are and
    one indented line each."""
    if len(problems) == 1:
        return f": {problems[0]}"
    return f", {len(problems)} problems:" + "".join(f"\n  {problem}" for problem in problems)
