"""The buildable's status, aggregated over its builds (``HarbormasterBuildEngine::
updateBuildable``, docs/harbormaster.md §1.8)."""

from django.db import transaction

from builds.engine import rows
from builds.engine.transitions import move_buildable
from builds.models import Build, Buildable, StatusEvent

B = Build.Status
BB = Buildable.Status


def aggregate_status(builds: list[tuple[str, str]]) -> str:
    """Return ``failed`` if a considered build is complete and not passed, ``passed`` if
    every considered build passed (also when none is considered), else ``building``.

    ``builds`` holds ``(status, affects_buildable behavior)`` per build. A build is
    considered according to its plan's ``affects_buildable`` behavior: ``never`` ignores it,
    ``building`` ignores it once complete, ``always`` considers it.
    """
    considered = [
        status
        for status, behavior in builds
        if behavior != "never" and not (behavior == "building" and status in Build.COMPLETE)
    ]
    if any(status in Build.COMPLETE and status != B.PASSED for status in considered):
        return BB.FAILED
    if all(status == B.PASSED for status in considered):
        return BB.PASSED
    return BB.BUILDING


def update_buildable(buildable_id: int) -> None:
    """Recompute and store buildable ``buildable_id``'s status under its row lock (held to
    the end of the caller's transaction, if there is one: an engine pass calls this inside
    its own, after locking its build).

    A buildable still ``preparing`` (no build started) is left alone.
    """
    with transaction.atomic(savepoint=False):
        buildable = rows.lock_buildable(buildable_id)
        if buildable.status == BB.PREPARING:
            return
        # The builds are read by a statement that starts once the lock is held, so it sees
        # a sibling build's move committed by the pass that held the lock before. Read in
        # the locking statement, they would be as of before the wait: each of two builds
        # completing together would count the other as building, and the buildable would
        # stay building.
        new_status = aggregate_status(rows.builds_affecting(buildable_id))
        if new_status != buildable.status:
            move_buildable(buildable, new_status, StatusEvent.Cause.ENGINE)
