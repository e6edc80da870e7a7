"""The engine's hot reads, written as SQL (its hot writes, the transitions, use
``builds.sql.update``; everything else in the engine uses the ORM).

Every decision runs these reads, and building an ORM query costs more CPU than running it
(README, "Benchmark"; ``bench/perf.py`` prints the pass's statements). ``raw()`` still
returns model instances, so the rest of the engine is unchanged; so does the receiving
target's lookup, which joins its build and plan (``builds.sql``). Each query's plan is
printed by the benchmark (it uses an index); keep them matching the indexes in
``builds/models.py`` (``message_unconsumed_idx``, ``unique_target_per_generation``).
"""

from django.db import connection

from builds import sql
from builds.models import Build, Buildable, BuildMessage, BuildPlan, BuildTarget

# What checking and storing a verdict reads of the receiving target, its build and plan;
# the rest (configs, variables, the plan snapshot) is never decoded for a message.
RECEIVING_TARGET_SQL = (
    "SELECT "
    + ", ".join(
        [
            sql.columns(
                BuildTarget,
                "t",
                "target",
                [
                    "id",
                    "phid",
                    "build_id",
                    "status",
                    "generation",
                    "step_key",
                    "wait_for_message",
                    "step_attempt",
                    "superseded_by",
                    "step_type",
                ],
            ),
            sql.columns(Build, "b", "build", ["id", "status", "generation", "plan_id"]),
            sql.columns(BuildPlan, "p", "plan", ["id", "name", "run_group_id"]),
        ]
    )
    + " FROM builds_buildtarget t JOIN builds_build b ON b.id = t.build_id"
    " JOIN builds_buildplan p ON p.id = b.plan_id"
    " WHERE t.phid = %s FOR NO KEY UPDATE OF t"
)

# The types a pass consumes; ``work`` is never consumed, so never read.
CONSUMABLE = sorted(BuildMessage.COMMANDS | BuildMessage.VERDICTS)


def lock_receiving_target(phid: str) -> BuildTarget | None:
    """The build target ``phid`` with its build and plan (only what ``sendmessage`` checks),
    its row locked ``FOR NO KEY UPDATE``: verdicts to one target take turns, while rows that
    merely refer to it (unit results, log chunks, events) can still be inserted. None if
    there is no such target."""
    found = sql.fetch_one(RECEIVING_TARGET_SQL, [phid])
    if found is None:
        return None
    names, row = found
    target = sql.instance(BuildTarget, "target", names, row)
    target.build = sql.instance(Build, "build", names, row)
    target.build.plan = sql.instance(BuildPlan, "plan", names, row)
    return target


def lock_build(build_id: int) -> Build:
    """Build ``build_id`` with its row locked ``FOR NO KEY UPDATE`` until the transaction
    ends. Raises ``Build.DoesNotExist``."""
    return _locked(Build, build_id)


def unconsumed_messages(build_id: int) -> list[BuildMessage]:
    """The build's unconsumed verdicts and commands, oldest (lowest id) first."""
    return list(
        BuildMessage.objects.raw(
            "SELECT * FROM builds_buildmessage"
            " WHERE build_id = %s AND NOT is_consumed AND type = ANY(%s) ORDER BY id",
            [build_id, CONSUMABLE],
        )
    )


def generation_targets(build_id: int, generation: int) -> list[BuildTarget]:
    """The build's targets of ``generation`` (a run), every attempt (superseded ones too),
    in no particular order."""
    return list(
        BuildTarget.objects.raw(
            "SELECT * FROM builds_buildtarget WHERE build_id = %s AND generation = %s",
            [build_id, generation],
        )
    )


def lock_buildable(buildable_id: int) -> Buildable:
    """Buildable ``buildable_id``, its row locked ``FOR NO KEY UPDATE`` until the
    transaction ends. Raises ``Buildable.DoesNotExist``."""
    return _locked(Buildable, buildable_id)


def _locked(model, pk: int):
    table = sql.quote(model._meta.db_table)
    found = list(model.objects.raw(f"SELECT * FROM {table} WHERE id = %s FOR NO KEY UPDATE", [pk]))
    if not found:
        raise model.DoesNotExist(f"no {model._meta.verbose_name} {pk}")
    return found[0]


def builds_affecting(buildable_id: int) -> list[tuple[str, str]]:
    """``(status, affects_buildable behavior)`` of each build of the buildable; the
    behavior defaults to ``always``, as ``BuildPlan.behavior`` does."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT b.status, COALESCE(p.behaviors ->> 'affects_buildable', 'always')"
            " FROM builds_build b JOIN builds_buildplan p ON p.id = b.plan_id"
            " WHERE b.buildable_id = %s",
            [buildable_id],
        )
        return cursor.fetchall()
