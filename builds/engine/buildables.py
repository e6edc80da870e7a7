"""The buildable's status, aggregated over its builds (``HarbormasterBuildEngine::
updateBuildable``, spec §1.8)."""

from django.db import transaction

from builds.engine.transitions import move_buildable
from builds.models import Build, Buildable, StatusEvent

BB = Buildable.Status


def aggregate_status(builds: list[Build]) -> str:
    """Return ``failed`` if a considered build is complete and not passed, ``passed`` if
    every considered build passed (also when none is considered), else ``building``.

    A build is considered according to its plan's ``affects_buildable`` behavior:
    ``never`` ignores it, ``building`` ignores it once complete, ``always`` considers it.
    """
    considered = []
    for build in builds:
        behavior = build.plan.behavior("affects_buildable")
        if behavior == "never" or (behavior == "building" and build.is_complete):
            continue
        considered.append(build)
    if any(b.is_complete and b.status != Build.Status.PASSED for b in considered):
        return BB.FAILED
    if all(b.status == Build.Status.PASSED for b in considered):
        return BB.PASSED
    return BB.BUILDING


def update_buildable(buildable_id: int) -> None:
    """Recompute and store buildable ``buildable_id``'s status under its row lock (held to
    the end of the caller's transaction, if there is one: an engine pass calls this inside
    its own, after locking its build).

    A buildable still ``preparing`` (no build started) is left alone.
    """
    with transaction.atomic(savepoint=False):
        buildable = Buildable.objects.select_for_update(no_key=True).get(pk=buildable_id)
        if buildable.status == BB.PREPARING:
            return
        builds = list(
            buildable.builds.select_related("plan").only("status", "buildable", "plan__behaviors")
        )
        new_status = aggregate_status(builds)
        if new_status != buildable.status:
            move_buildable(buildable, new_status, StatusEvent.Cause.ENGINE)
