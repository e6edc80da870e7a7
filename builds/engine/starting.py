"""Starting builds: finding the buildable, and creating a build of a plan with its first pass."""

from django.db import transaction

from builds import metrics
from builds.engine import concurrency
from builds.engine.buildables import update_buildable
from builds.engine.passes import pass_over
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
    are now and the version they come from (``Build.plan_version``), run its first engine
    pass, and move the buildable to ``building``, all in the caller's transaction
    (``HarbormasterBuildable::applyPlan``, docs/harbormaster.md §1.4, which queues the
    first pass instead: docs/design.md §3.8). The build commits ``building`` in run 1 with
    its first targets, which are queued to run after the commit; a plan with concurrency
    groups has its first pass queued instead, after the commit. Raises PlanNotRunnable for a
    disabled plan; database errors propagate, and nothing is stored."""
    if plan.status != BuildPlan.Status.ACTIVE:
        raise PlanNotRunnable(f'Build plan "{plan.name}" is disabled.')
    # No savepoint: a build that fails to start fails its caller's whole transaction (no
    # caller goes on after one), and a savepoint would cost two round trips per start.
    # The start's StatusEvents (build pending, its first pass's, buildable building) go in
    # one insert.
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
        metrics.build_started(plan.pk)
        if concurrency.uses_groups(build):
            # Admission locks the groups' rows, and one transaction may start several builds
            # of one buildable (a forge's push starts every plan it triggers): a first pass
            # here would lock groups after the buildable's row, and in no fixed order across
            # the builds. So the pass is queued, as Harbormaster does, and the build is
            # announced pending, as it is seen until that pass.
            build_changed.send(Build, build=build)
            _move_buildable_to_building(buildable, build)
            request_update(build.pk)
            return build
        # The first pass runs here rather than in a queued update_build: a build nobody
        # else can see until this commit needs neither lock to pass (its new row is this
        # transaction's alone) and has no messages or targets to read, and sparing the
        # broker round trip and a worker's turn starts its first steps sooner. It runs
        # before the buildable moves (build, then buildable: the lock order) and locks no
        # other row. Its move to building is the build's first ``build_changed``: nobody
        # outside this transaction ever sees it pending, so its creation is not announced.
        first_pass = pass_over(build, messages=[], targets=[])
        _move_buildable_to_building(buildable, build)
        if first_pass.completion_changed:
            # A plan none of whose steps can run completes its build at once; the pass's
            # roll-up came before the buildable moved to building.
            update_buildable(buildable.pk)
    return build


def _move_buildable_to_building(buildable: Buildable, build: Build) -> None:
    move_buildable(
        buildable,
        Buildable.Status.BUILDING,
        StatusEvent.Cause.ENGINE,
        detail=f"build {build.pk} started",
    )
