"""The engine's hot reads, written as named SQL; every write, and every other read, uses the
ORM.

Every decision runs these reads, and building these ORM queries costs the process several
times the CPU that running them does (README, "Benchmark"; ``bench/perf.py`` prints the
pass's statements and their plans). ``harbor.named_reads`` runs each as a statement
prepared once per database session and turns its rows into model instances, as
``Manager.raw()`` would for more CPU, so the rest of the engine is unchanged. Table and
column names come from the models' ``_meta``, columns always by name (``select_list``);
each query uses a primary key or an index in ``builds/models.py``
(``message_unconsumed_idx``, ``unique_target_per_generation``);
``tests/engine/test_rows.py`` holds each to its ORM equivalent.

A locking read joins rows it does not lock (``FOR NO KEY UPDATE OF``) only for what no
holder of that lock changes, such as a plan's settings: a statement that waited for a lock
reads every other row as it was when the statement began, not as the lock's holder
committed it. So the buildable's builds are read in a statement of their own, after its
lock. The one exception is a worker's claim (``lock_claimed_target``), which reads its
build's status beside the target's lock: the claim decides on the target's own row as it
is once locked, and a pass that completes, aborts or restarts the build moves the build's
unfinished targets in the same transaction, so a claim that waited for such a pass finds
its target moved, whatever its read of the build says.
"""

from django.db import OperationalError
from psycopg2 import errorcodes

from builds.models import Build, Buildable, BuildMessage, BuildPlan, BuildTarget
from harbor import named_reads
from harbor.named_reads import column, select_list, table

# What checking and storing a verdict reads of the receiving target, its build and plan
# (no JSON columns: configs, variables and the plan snapshot are never decoded for a
# message). The build's and plan's columns come back as extra attributes of the target.
_TARGET_FIELDS = [
    *("id", "phid", "build", "status", "generation", "step_key", "wait_for_message"),
    *("step_attempt", "superseded_by", "step_type"),
]
_BUILD_FIELDS = ["status", "generation", "plan"]
_PLAN_FIELDS = ["name", "run_group"]
RECEIVING_TARGET_SQL = (
    f"SELECT {select_list(BuildTarget, 't', _TARGET_FIELDS)},"
    f" {select_list(Build, 'b', _BUILD_FIELDS, 'build__')},"
    f" {select_list(BuildPlan, 'p', _PLAN_FIELDS, 'plan__')}"
    f" FROM {table(BuildTarget)} t"
    f" JOIN {table(Build)} b ON b.id = t.{column(BuildTarget, 'build')}"
    f" JOIN {table(BuildPlan)} p ON p.id = b.{column(Build, 'plan')}"
    f" WHERE t.{column(BuildTarget, 'phid')} = %s FOR NO KEY UPDATE OF t"
)

# The types a pass consumes; ``work`` is never consumed, so never read.
CONSUMABLE = sorted(BuildMessage.COMMANDS | BuildMessage.VERDICTS)


def lock_receiving_target(phid: str) -> BuildTarget | None:
    """The build target ``phid`` with its build and plan (only what ``sendmessage`` checks;
    other fields are deferred, as with ``QuerySet.only()``), its row locked ``FOR NO KEY
    UPDATE``: verdicts to one target take turns, while rows that merely refer to it (unit
    results, log chunks, events) can still be inserted. None if there is no such target."""
    found = named_reads.read(BuildTarget, RECEIVING_TARGET_SQL, [phid])
    if not found:
        return None
    target = found[0]
    target.build = named_reads.joined(target, Build, "build__", _BUILD_FIELDS, id=target.build_id)
    plan_id = target.build.plan_id
    target.build.plan = named_reads.joined(target, BuildPlan, "plan__", _PLAN_FIELDS, id=plan_id)
    return target


# What a worker's claim reads: every column of the target and of its build (the step it
# runs may read any of them), the build's as ``build__<field name>``.
_CLAIM_BUILD_FIELDS = [f.name for f in Build._meta.concrete_fields]
CLAIMED_TARGET_SQL = (
    f"SELECT {select_list(BuildTarget, 't')},"
    f" {select_list(Build, 'b', _CLAIM_BUILD_FIELDS, 'build__')}"
    f" FROM {table(BuildTarget)} t"
    f" JOIN {table(Build)} b ON b.id = t.{column(BuildTarget, 'build')}"
    f" WHERE t.id = %s FOR UPDATE OF t"
)


def lock_claimed_target(target_id: int) -> BuildTarget | None:
    """Build target ``target_id`` with its build (every field of both), the target's row
    (only) locked ``FOR UPDATE`` until the transaction ends, for a worker's claim: a claim
    does not wait for the build's row, which a pass holds (it waits only for a pass that is
    moving this very target). None if there is no such target."""
    found = named_reads.read(BuildTarget, CLAIMED_TARGET_SQL, [target_id])
    if not found:
        return None
    target = found[0]
    target.build = named_reads.joined(target, Build, "build__", _CLAIM_BUILD_FIELDS)
    return target


# What a pass reads of the build's plan: ``notify`` for the receiver that writes the
# notifications of its moves, ``auto_key`` and ``behaviors`` for the commands' checks,
# ``name`` for the context of a forge's commit status (``forges.statuses``).
_PASS_PLAN_FIELDS = ["auto_key", "behaviors", "notify", "name"]
# What a pass reads of the buildable: what a new target's variables name
# (``builds.variables.snapshot_variables``) and where a build move's commit status goes
# (``forge``, ``forge_repository``: ``forges.statuses``), fields written when the buildable
# is created and never changed, so reading them unlocked is safe. Its status is read under
# its own lock (``lock_buildable``).
_PASS_BUILDABLE_FIELDS = [
    "phid",
    "object_phid",
    "repository",
    "ref",
    "commit",
    "diff",
    "revision",
    "base_ref",
    "forge",
    "forge_repository",
]
LOCK_BUILD_SQL = (
    f"SELECT {select_list(Build, 'b')},"
    f" {select_list(BuildPlan, 'p', _PASS_PLAN_FIELDS, 'plan__')},"
    f" {select_list(Buildable, 'a', _PASS_BUILDABLE_FIELDS, 'buildable__')}"
    f" FROM {table(Build)} b"
    f" JOIN {table(BuildPlan)} p ON p.id = b.{column(Build, 'plan')}"
    f" JOIN {table(Buildable)} a ON a.id = b.{column(Build, 'buildable')}"
    f" WHERE b.id = %s FOR NO KEY UPDATE OF b"
)


class BuildLocked(Exception):
    """The build's row is locked by another transaction, and the caller would not wait."""


def lock_build(build_id: int, wait: bool = True) -> Build:
    """Build ``build_id`` with its row locked ``FOR NO KEY UPDATE`` until the transaction
    ends (the plan's and buildable's rows are not locked), ``build.plan`` holding what a
    pass reads of it (``_PASS_PLAN_FIELDS``) and ``build.buildable`` what a new target's
    variables need (``_PASS_BUILDABLE_FIELDS``); their other fields are deferred, as with
    ``QuerySet.only()``. Raises ``Build.DoesNotExist``; with ``wait=False``, raises
    ``BuildLocked`` at once if another transaction holds the row (``NOWAIT``), leaving the
    transaction to be rolled back."""
    statement = LOCK_BUILD_SQL if wait else f"{LOCK_BUILD_SQL} NOWAIT"
    try:
        found = named_reads.read(Build, statement, [build_id])
    except OperationalError as exc:
        if getattr(exc.__cause__, "pgcode", None) == errorcodes.LOCK_NOT_AVAILABLE:
            raise BuildLocked(f"build {build_id} is locked") from exc
        raise
    if not found:
        raise Build.DoesNotExist(f"no build {build_id}")
    build = found[0]
    build.plan = named_reads.joined(build, BuildPlan, "plan__", _PASS_PLAN_FIELDS, id=build.plan_id)
    build.buildable = named_reads.joined(
        build, Buildable, "buildable__", _PASS_BUILDABLE_FIELDS, id=build.buildable_id
    )
    return build


UNCONSUMED_SQL = (
    f"SELECT {select_list(BuildMessage, 'm')} FROM {table(BuildMessage)} m"
    f" WHERE {column(BuildMessage, 'build')} = %s AND NOT {column(BuildMessage, 'is_consumed')}"
    f" AND {column(BuildMessage, 'type')} = ANY(%s) ORDER BY id"
)


def unconsumed_messages(build_id: int) -> list[BuildMessage]:
    """The build's unconsumed verdicts and commands, oldest (lowest id) first."""
    return named_reads.read(BuildMessage, UNCONSUMED_SQL, [build_id, CONSUMABLE])


# Every column but the variables: a pass reads a wide build's every target, and decoding
# each one's variables (JSON that only the worker running it uses) was the largest part of
# such a pass's CPU. A pass creates new attempts from the build's own snapshot.
_PASS_TARGET_FIELDS = [f.name for f in BuildTarget._meta.concrete_fields if f.name != "variables"]
GENERATION_TARGETS_SQL = (
    f"SELECT {select_list(BuildTarget, 't', _PASS_TARGET_FIELDS)} FROM {table(BuildTarget)} t"
    f" WHERE {column(BuildTarget, 'build')} = %s AND {column(BuildTarget, 'generation')} = %s"
)


def generation_targets(build_id: int, generation: int) -> list[BuildTarget]:
    """The build's targets of ``generation`` (a run), every attempt (superseded ones too),
    in no particular order, with ``variables`` deferred (reading it costs a query)."""
    return named_reads.read(BuildTarget, GENERATION_TARGETS_SQL, [build_id, generation])


LOCK_BUILDABLE_SQL = (
    f"SELECT {select_list(Buildable, 'a')} FROM {table(Buildable)} a"
    f" WHERE id = %s FOR NO KEY UPDATE"
)


def lock_buildable(buildable_id: int) -> Buildable:
    """Buildable ``buildable_id``, its row locked ``FOR NO KEY UPDATE`` until the
    transaction ends. Raises ``Buildable.DoesNotExist``."""
    found = named_reads.read(Buildable, LOCK_BUILDABLE_SQL, [buildable_id])
    if not found:
        raise Buildable.DoesNotExist(f"no buildable {buildable_id}")
    return found[0]


BUILDS_AFFECTING_SQL = (
    f"SELECT b.{column(Build, 'status')},"
    f" COALESCE(p.{column(BuildPlan, 'behaviors')} ->> 'affects_buildable', 'always')"
    f" FROM {table(Build)} b JOIN {table(BuildPlan)} p ON p.id = b.{column(Build, 'plan')}"
    f" WHERE b.{column(Build, 'buildable')} = %s"
)


def builds_affecting(buildable_id: int) -> list[tuple[str, str]]:
    """``(status, affects_buildable behavior)`` of each build of the buildable; the
    behavior defaults to ``always``, as ``BuildPlan.behavior`` does. Read after
    ``lock_buildable``, in a statement of its own (see the module docstring)."""
    return named_reads.values(BUILDS_AFFECTING_SQL, [buildable_id])
