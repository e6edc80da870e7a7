"""Flow control: ``wait-for-previous-builds`` and ``abort-older-builds`` (docs/harbormaster.md §4).

Harbormaster's versions follow commit parents and revision diffs; Harbor has neither, so it
uses what buildables do have, the repository and the ref:

- ``wait-for-previous-builds`` waits while any build of the same plan on an *earlier*
  buildable (smaller id) of the same repository and ref is pending or building, checking
  every ``poll_seconds`` (default 5; Harbormaster: 15) and freeing its worker in between
  (it yields, as Harbormaster's step does). Paused builds are not waited for (a
  paused build may never resume). A buildable without a repository or ref passes at once,
  as Harbormaster passes for anything but a commit.
- ``abort-older-builds`` sends ``abort`` to every incomplete build of the same plan on the
  same repository and ref that was started before this one (smaller id), through the engine
  like any command. Harbormaster acts when the build is created; Harbor acts when the step
  runs, so put it first. A build that completes meanwhile is left alone.
"""

from django.db.models import QuerySet

from builds import engine, step_options
from builds.models import Build
from workers.steps.base import BuildStepImplementation, StepContext, StepYield

RUNNING = (Build.Status.PENDING, Build.Status.BUILDING)


def same_line_builds(build: Build) -> QuerySet[Build]:
    """Builds of ``build``'s plan on buildables of the same repository and ref, other than
    ``build`` itself; empty if the buildable has no repository or no ref."""
    buildable = build.buildable
    if not buildable.repository or not buildable.ref:
        return Build.objects.none()
    return Build.objects.filter(
        plan_id=build.plan_id,
        buildable__repository=buildable.repository,
        buildable__ref=buildable.ref,
    ).exclude(pk=build.pk)


class WaitForPreviousBuildsStep(BuildStepImplementation):
    """Wait until builds of this plan on earlier buildables of the same ref are done."""

    declaration = step_options.WAIT_FOR_PREVIOUS_BUILDS
    description = "Wait for builds of this plan on earlier buildables of the same ref."

    def run(self, context: StepContext) -> None:
        build = Build.objects.select_related("buildable").get(pk=context.target.build_id)
        earlier = same_line_builds(build).filter(
            buildable_id__lt=build.buildable_id, status__in=RUNNING
        )
        waiting = sorted(earlier.values_list("pk", flat=True))
        if waiting:
            if not context.target.logs.filter(source="flow", log_type="wait").exists():
                ids = ", ".join(str(pk) for pk in waiting)
                context.write_log("flow", "wait", f"Waiting for earlier build(s) {ids}.")
            # Free the worker while waiting: a long wait must not hold a pool process.
            raise StepYield(float(context.option("poll_seconds")))
        context.write_log("flow", "wait", "No earlier build of this plan and ref is running.")


class AbortOlderBuildsStep(BuildStepImplementation):
    """Send ``abort`` to older incomplete builds of this plan on the same ref."""

    declaration = step_options.ABORT_OLDER_BUILDS
    description = "Abort older incomplete builds of this plan on the same ref."

    def run(self, context: StepContext) -> None:
        build = Build.objects.select_related("buildable").get(pk=context.target.build_id)
        older = same_line_builds(build).filter(pk__lt=build.pk).exclude(status__in=Build.COMPLETE)
        lines = []
        for phid, pk in older.order_by("pk").values_list("phid", "pk"):
            lines.append(f"Build {pk}: {_send_abort(phid, context.target.phid)}")
        context.write_log("flow", "abort", "\n".join(lines) or "No older build to abort.")


def _send_abort(build_phid: str, target_phid: str) -> str:
    """Send ``abort`` to the build; return what happened. The idempotency key makes a target
    that runs again (a new claim after a crash) send each abort once."""
    try:
        receipt = engine.receive_message(
            build_phid, "abort", author=None, idempotency_key=f"abort-older-builds:{target_phid}"
        )
    except (engine.MessageRefused, engine.InvalidMessage, engine.ReceiverNotFound) as exc:
        return f"not aborted ({exc})"
    return "abort sent" if receipt.created else "abort already sent"
