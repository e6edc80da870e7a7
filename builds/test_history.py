"""Unit test history: one test's results across the builds of a plan.

A test is its namespace and name (``models.unit_test_key``: an MD5, indexed with the
target, so each question below is a few index probes into the targets of a handful of
builds, however many unit results are stored):

- a failure is **new** when the test passed in the previous build of the same plan on the
  same repository and ref, **known** when it failed there too;
- a test is **flaky** when it both passed and failed on the same commit in builds of the
  plan (any run: restarts and retries count);
- a test's page lists its last results in the plan;
- a plan's page lists its flakiest tests (most commits with both outcomes, over its last
  builds) and its slowest (in its latest build with unit results).
"""

import hashlib

from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.db.models.functions import Left

from builds.models import Build, BuildTarget, UnitResult, unit_test_key
from builds.unit_results import FAILING_RESULTS, NAME_SHOWN

HISTORY_SHOWN = 50  # results a test's page lists
RANKED = 10  # tests in each of the plan page's lists
FLAKY_BUILDS = 50  # a plan's last builds searched for flaky tests


def key_of(namespace: str, name: str) -> str:
    """The test key of ``namespace`` and ``name``, as ``models.unit_test_key`` computes it."""
    return hashlib.md5(f"{namespace}\x1f{name}".encode(), usedforsecurity=False).hexdigest()


def with_key(results):
    """``results`` annotated with ``test_key``."""
    return results.annotate(test_key=unit_test_key())


def previous_build(build: Build):
    """A queryset of the one build of the same plan on the same repository and ref just
    before ``build`` (for use as a subquery)."""
    earlier = Build.objects.filter(
        plan_id=build.plan_id,
        buildable__repository=build.buildable.repository,
        buildable__ref=build.buildable.ref,
        id__lt=build.id,
    )
    return earlier.order_by("-id").values("id")[:1]


def compared_targets(build: Build) -> tuple[set[int], set[int]]:
    """The targets a run of ``build`` is compared with, in one query: (those of the
    previous build's current run on the same ref, those of every build of the plan on the
    same commit, every run)."""
    previous = Q(build_id=Subquery(previous_build(build)), generation=F("build__generation"))
    commit = build.buildable.commit
    same_commit = Q(build__plan_id=build.plan_id, build__buildable__commit=commit)
    rows = BuildTarget.objects.filter(previous | same_commit if commit else previous)
    rows = rows.annotate(is_previous=ExpressionWrapper(previous, output_field=BooleanField()))
    before, on_commit = set(), set()
    for target_id, is_previous, target_commit in rows.values_list(
        "id", "is_previous", "build__buildable__commit"
    ):
        if is_previous:
            before.add(target_id)
        if commit and target_commit == commit:
            on_commit.add(target_id)
    return before, on_commit


def outcomes(keys: set[str], target_ids: set[int]) -> dict[tuple[str, int], set[str]]:
    """(test key, target id) → the results it had there, for ``keys`` in ``target_ids``
    (index probes)."""
    if not keys or not target_ids:
        return {}
    found: dict[tuple[str, int], set[str]] = {}
    rows = with_key(UnitResult.objects).filter(test_key__in=keys, target_id__in=target_ids)
    for key, target_id, result in rows.values_list("test_key", "target_id", "result"):
        found.setdefault((key, target_id), set()).add(result)
    return found


def marks(build: Build, generation: int, units: list) -> dict[int, list[str]]:
    """Unit result id → its marks (``new``, ``known``, ``flaky``) for ``units`` (rows of
    ``build``'s run ``generation`` annotated with ``test_key``). Two queries."""
    before_targets, commit_targets = compared_targets(build)
    seen = outcomes({unit.test_key for unit in units}, before_targets | commit_targets)
    before: dict[str, set[str]] = {}
    on_commit: dict[str, set[str]] = {}
    for (key, target_id), results in seen.items():
        if target_id in before_targets:
            before.setdefault(key, set()).update(results)
        if target_id in commit_targets:
            on_commit.setdefault(key, set()).update(results)
    for unit in units:  # this run's own results count for flakiness too
        on_commit.setdefault(unit.test_key, set()).add(unit.result)
    return {unit.id: _marks(unit, before, on_commit) for unit in units}


def _marks(unit, before: dict, on_commit: dict) -> list[str]:
    found = []
    if unit.result in FAILING_RESULTS and unit.test_key in before:
        found.append("new" if "pass" in before[unit.test_key] else "known")
    results = on_commit.get(unit.test_key, set())
    if "pass" in results and results & set(FAILING_RESULTS):
        found.append("flaky")
    return found


def history(plan_id: int, key: str) -> list[UnitResult]:
    """The last ``HISTORY_SHOWN`` results of test ``key`` in builds of plan ``plan_id``,
    newest build first, each with ``build_id``, ``generation``, ``commit``, ``ref``,
    ``name_shown`` and ``namespace_shown`` annotated."""
    rows = with_key(UnitResult.objects).filter(test_key=key, target__build__plan_id=plan_id)
    return list(
        rows.only("id", "result", "duration", "target_id")
        .annotate(
            build_id=F("target__build_id"),
            generation=F("target__generation"),
            commit=F("target__build__buildable__commit"),
            ref=F("target__build__buildable__ref"),
            name_shown=Left("name", NAME_SHOWN + 1),
            namespace_shown=Left("namespace", NAME_SHOWN + 1),
        )
        .order_by("-target__build_id", "-target__generation", "-id")[:HISTORY_SHOWN]
    )


def recent_targets(plan_id: int, builds: int = FLAKY_BUILDS) -> list[int]:
    """The target ids of the plan's last ``builds`` builds (every run)."""
    last = Build.objects.filter(plan_id=plan_id).order_by("-id").values("id")[:builds]
    return list(BuildTarget.objects.filter(build__in=last).values_list("id", flat=True))


def flakiest(plan_id: int) -> list[dict]:
    """The plan's ``RANKED`` flakiest tests over its last ``FLAKY_BUILDS`` builds: those
    that failed on a commit where they also passed, most such commits first. Each is
    ``{"test_key", "namespace", "name", "commits"}``. Failing results are few, so this
    starts from them and probes the index for passes on the same commits."""
    targets = recent_targets(plan_id)
    failures = (
        with_key(UnitResult.objects)
        .filter(target_id__in=targets, result__in=FAILING_RESULTS)
        .values_list("test_key", "target__build__buildable__commit")
        .distinct()
    )
    failed_on: dict[str, set[str]] = {}
    for key, commit in failures:
        if commit:
            failed_on.setdefault(key, set()).add(commit)
    if not failed_on:
        return []
    passes = (
        with_key(UnitResult.objects)
        .filter(test_key__in=failed_on, target_id__in=targets, result="pass")
        .values_list("test_key", "target__build__buildable__commit")
        .distinct()
    )
    both: dict[str, int] = {}
    for key, commit in passes:
        if commit in failed_on[key]:
            both[key] = both.get(key, 0) + 1
    ranked = sorted(both.items(), key=lambda item: (-item[1], item[0]))[:RANKED]
    return _named(ranked, targets, "commits")


def slowest(plan_id: int) -> list[dict]:
    """The ``RANKED`` slowest tests of the plan's latest build with unit results (its
    current run): ``{"test_key", "namespace", "name", "duration"}``, slowest first."""
    reported = UnitResult.objects.filter(target__build=OuterRef("pk"))
    build = (
        Build.objects.filter(plan_id=plan_id)
        .filter(Exists(reported))
        .order_by("-id")
        .only("id", "generation")
        .first()
    )
    if build is None:
        return []
    top = UnitResult.objects.filter(
        target__build=build, target__generation=build.generation, duration__isnull=False
    ).order_by("-duration", "id")
    # The ten are chosen first and only they get their key and names computed (a subquery
    # in the same query): computed for every result of the run, that outweighed the sort.
    rows = _capped(with_key(UnitResult.objects).filter(pk__in=top.values("id")[:RANKED]))
    rows = rows.order_by("-duration", "id")
    return [
        {**_names(row), "duration": row["duration"]}
        for row in rows.values("test_key", "name_shown", "namespace_shown", "duration")[:RANKED]
    ]


def _capped(rows):
    return rows.annotate(
        name_shown=Left("name", NAME_SHOWN + 1), namespace_shown=Left("namespace", NAME_SHOWN + 1)
    )


def _names(row: dict) -> dict:
    return {
        "test_key": row["test_key"],
        "name": row["name_shown"],
        "namespace": row["namespace_shown"],
    }


def _named(ranked: list[tuple[str, int]], targets: list[int], field: str) -> list[dict]:
    """``ranked`` (key, value) with each test's capped namespace and name (one query)."""
    rows = _capped(
        with_key(UnitResult.objects).filter(
            test_key__in=[key for key, _ in ranked], target_id__in=targets
        )
    )
    names = {
        row["test_key"]: row for row in rows.values("test_key", "name_shown", "namespace_shown")
    }
    return [{**_names(names[key]), field: value} for key, value in ranked if key in names]
