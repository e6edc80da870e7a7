"""Starting builds: finding the buildable and creating a pending build of a plan."""

from django.db import transaction

from builds import metrics
from builds.engine.targets import request_update
from builds.engine.transitions import (
    build_changed,
    events_in_one_insert,
    move_buildable,
    record_event,
)
from builds.models import Build, Buildable, BuildPlan, StatusEvent


class PlanNotRunnable(ValueError):
    """The plan is disabled or has no steps snapshot-able."""


def find_or_create_buildable(
    repository: str,
    ref: str = "",
    commit: str = "",
    diff: str = "",
    object_phid: str = "",
    is_manual: bool = True,
    revision: str = "",
    base_ref: str = "",
    forge: str = "",
    forge_repository: str = "",
) -> Buildable:
    """Return the buildable for (repository, commit, diff, revision), creating it if needed.

    ``revision`` is a pull (merge) request's number, so a pull request's buildable is not
    the one of the same commit pushed to a branch. ``ref``, ``base_ref`` (the ref a pull
    request targets) and ``object_phid`` are recorded on creation. Safe under concurrency:
    two callers creating the same buildable end with the same row, inside or outside a
    transaction of theirs (``get_or_create`` inserts under a savepoint of its own and, when
    the unique index refuses a second insert, reads the row that won).
    """
    lookup = {"repository": repository, "commit": commit, "diff": diff, "revision": revision}
    defaults = {
        "ref": ref,
        "base_ref": base_ref,
        "object_phid": object_phid,
        "is_manual": is_manual,
        "forge": forge,
        "forge_repository": forge_repository,
    }
    return Buildable.objects.get_or_create(**lookup, defaults=defaults)[0]


def start_build(
    plan: BuildPlan, buildable: Buildable, initiator=None, parameters: dict | None = None
) -> Build:
    """Create a ``pending`` build of ``plan`` for ``buildable`` with the plan's steps as they
    are now and the version they come from (``Build.plan_version``), move the buildable to
    ``building``, and fire the first ``update_build`` after commit
    (``HarbormasterBuildable::applyPlan``, docs/harbormaster.md §1.4). Raises PlanNotRunnable
    for a disabled plan."""
    if plan.status != BuildPlan.Status.ACTIVE:
        raise PlanNotRunnable(f'Build plan "{plan.name}" is disabled.')
    # No savepoint: a build that fails to start fails its caller's whole transaction (no
    # caller goes on after one), and a savepoint would cost two round trips per start.
    # The start's two StatusEvents (build pending, buildable building) go in one insert.
    with transaction.atomic(savepoint=False), events_in_one_insert():
        build = Build.objects.create(
            plan=plan,
            buildable=buildable,
            initiator=initiator,
            parameters={str(k): str(v) for k, v in (parameters or {}).items()},
            plan_snapshot=plan.snapshot(),
            plan_version=plan.versions.order_by("-number").first(),
            status=Build.Status.PENDING,
        )
        record_event(
            build=build,
            from_status="",
            to=Build.Status.PENDING,
            cause=StatusEvent.Cause.COMMAND,
            actor=initiator,
        )
        build_changed.send(Build, build=build)
        metrics.build_started(plan.pk)
        move_buildable(
            buildable,
            Buildable.Status.BUILDING,
            StatusEvent.Cause.ENGINE,
            detail=f"build {build.pk} started",
        )
        request_update(build.pk)
    return build
