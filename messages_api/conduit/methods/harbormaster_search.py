"""``harbormaster.{build,buildable,target,buildplan,artifact}.search`` (docs/harbormaster.md §6.4,
the search engines in ``HM/query/*SearchEngine.php``). Statuses appear as Harbormaster's values:
targets as ``target/waiting``; builds with their name and ANSI color
(docs/harbormaster.md §1.1–1.2)."""

from datetime import UTC, datetime

from django.conf import settings
from django.db.models import QuerySet

from builds.models import Artifact, Build, Buildable, BuildPlan, BuildTarget
from messages_api.conduit.errors import CoreError
from messages_api.conduit.registry import conduit_method
from messages_api.conduit.search import (
    POLICY,
    SEARCH_PARAMS,
    Constraint,
    SearchEngine,
    epoch,
)

# Build status -> (display name, ANSI color) (HarbormasterBuildStatus, docs/harbormaster.md §1.1).
BUILD_STATUSES = {
    "inactive": ("Inactive", "yellow"),
    "pending": ("Pending", "yellow"),
    "building": ("Building", "yellow"),
    "passed": ("Passed", "green"),
    "failed": ("Failed", "red"),
    "aborted": ("Aborted", "red"),
    "error": ("Unexpected Error", "red"),
    "paused": ("Paused", "yellow"),
    "deadlocked": ("Deadlocked", "red"),
}
TARGET_STATUS_NAMES = {
    "pending": "Pending",
    "building": "Building",
    "waiting": "Waiting for Message",
    "passed": "Passed",
    "failed": "Failed",
    "aborted": "Aborted",
}
BUILDABLE_STATUS_NAMES = {
    "preparing": "Preparing",
    "building": "Building",
    "passed": "Passed",
    "failed": "Failed",
}
TARGET_PREFIX = "target/"
# Harbor's behavior keys -> Harbormaster's (HarbormasterBuildPlanBehavior).
BEHAVIOR_KEYS = {"restartable": "restartable", "affects_buildable": "buildable"}


def build_status(status: str) -> dict:
    """``{"value", "name", "color.ansi"}`` of a build status; unknown values as upstream."""
    name, color = BUILD_STATUSES.get(status, (f'Unknown ("{status}")', "magenta"))
    return {"value": status, "name": name, "color.ansi": color}


def target_status(status: str) -> dict:
    """``{"value": "target/<status>", "name"}``."""
    return {"value": TARGET_PREFIX + status, "name": TARGET_STATUS_NAMES.get(status, status)}


def _dates(obj, modified=None) -> dict:
    created = epoch(obj.date_created)
    return {
        "dateCreated": created,
        "dateModified": epoch(modified) if modified else created,
        "policy": dict(POLICY),
    }


def build_fields(build: Build) -> dict:
    return {
        "buildablePHID": build.buildable.phid,
        "buildPlanPHID": build.plan.phid,
        "buildStatus": build_status(build.status),
        "initiatorPHID": build.initiator.phid if build.initiator else None,
        "name": build.plan.name,
        **_dates(build, build.date_modified),
    }


def build_querybuilds_attachment(build: Build) -> dict:
    """The ``querybuilds`` attachment: what the deprecated ``querybuilds`` also showed."""
    return {
        "uri": build.absolute_url(),
        "name": build.plan.name,
        "buildStatusName": build_status(build.status)["name"],
    }


BUILDS = SearchEngine(
    name="builds",
    queryset=lambda: Build.objects.select_related("plan", "buildable", "initiator"),
    fields=build_fields,
    constraints=[
        Constraint("plans", "list<phid>", lambda qs, v: qs.filter(plan__phid__in=v)),
        Constraint("buildables", "list<phid>", lambda qs, v: qs.filter(buildable__phid__in=v)),
        Constraint("statuses", "list<string>", lambda qs, v: qs.filter(status__in=v)),
        Constraint("initiators", "list<phid>", lambda qs, v: qs.filter(initiator__phid__in=v)),
    ],
    builtin_queries={
        "initiated": lambda qs, call: qs.filter(initiator=call.user),
        "waiting": lambda qs, call: qs.filter(status__in=["inactive", "pending"]),
        "active": lambda qs, call: qs.filter(status__in=["building", "paused"]),
        "completed": lambda qs, call: qs.filter(status__in=Build.COMPLETE),
    },
    attachments={"querybuilds": build_querybuilds_attachment},
)


def buildable_fields(buildable: Buildable) -> dict:
    return {
        "objectPHID": buildable.object_phid or None,
        "containerPHID": None,
        "buildableStatus": {"value": buildable.status},
        "isManual": buildable.is_manual,
        "uri": settings.HARBOR_BASE_URL + buildable.get_absolute_url(),
        **_dates(buildable, buildable.date_modified),
    }


def _no_container(qs: QuerySet, phids: list) -> QuerySet:
    # Harbor's buildables have no container (revision or repository object).
    return qs.none() if phids else qs


BUILDABLES = SearchEngine(
    name="buildables",
    queryset=lambda: Buildable.objects.all(),
    fields=buildable_fields,
    constraints=[
        Constraint("objectPHIDs", "list<string>", lambda qs, v: qs.filter(object_phid__in=v)),
        Constraint("containerPHIDs", "list<string>", _no_container),
        Constraint("statuses", "list<string>", lambda qs, v: qs.filter(status__in=v)),
        Constraint("manual", "bool", lambda qs, v: qs.filter(is_manual=v)),
    ],
)


def target_fields(target: BuildTarget) -> dict:
    step_phids = {step.get("key"): step.get("phid") for step in target.build.plan_snapshot}
    latest = max(d for d in (target.date_created, target.date_started, target.date_completed) if d)
    return {
        "name": target.name,
        "buildPHID": target.build.phid,
        "buildStepPHID": step_phids.get(target.step_key),
        "status": target_status(target.status),
        "epochStarted": epoch(target.date_started),
        "epochCompleted": epoch(target.date_completed),
        "buildGeneration": target.generation,
        **_dates(target, latest),
    }


def _target_statuses(qs: QuerySet, values: list[str]) -> QuerySet:
    return qs.filter(status__in=[v.removeprefix(TARGET_PREFIX) for v in values])


def _epoch_range(name: str, bound: str) -> Constraint:
    """``<name>Start`` / ``<name>End``: targets whose ``date_<name>`` is at or after / at or
    before an epoch."""

    def apply(qs: QuerySet, value: int) -> QuerySet:
        try:
            moment = datetime.fromtimestamp(value, UTC)
        except (OverflowError, ValueError, OSError) as error:
            raise CoreError(f"Epoch {value} is out of range.") from error
        return qs.filter(**{f"date_{name}__{bound}": moment})

    return Constraint(name + ("Start" if bound == "gte" else "End"), "int", apply)


TARGETS = SearchEngine(
    name="targets",
    queryset=lambda: BuildTarget.objects.select_related("build"),
    fields=target_fields,
    constraints=[
        Constraint("buildPHIDs", "list<phid>", lambda qs, v: qs.filter(build__phid__in=v)),
        Constraint("statuses", "list<string>", _target_statuses),
        *[
            _epoch_range(name, bound)
            for name in ("created", "started", "completed")
            for bound in ("gte", "lte")
        ],
    ],
)


def plan_fields(plan: BuildPlan) -> dict:
    behaviors = {upstream: {"value": plan.behavior(key)} for key, upstream in BEHAVIOR_KEYS.items()}
    return {
        "name": plan.name,
        "status": {"value": plan.status},
        "behaviors": behaviors,
        **_dates(plan, plan.date_modified),
    }


BUILD_PLANS = SearchEngine(
    name="buildplans",
    queryset=lambda: BuildPlan.objects.all(),
    fields=plan_fields,
    constraints=[
        Constraint("match", "string", lambda qs, v: qs.filter(name__icontains=v)),
        Constraint("statuses", "list<string>", lambda qs, v: qs.filter(status__in=v)),
    ],
    builtin_queries={"active": lambda qs, call: qs.filter(status=BuildPlan.Status.ACTIVE)},
)


def artifact_fields(artifact: Artifact) -> dict:
    return {
        "buildTargetPHID": artifact.target.phid,
        "artifactType": artifact.artifact_type,
        "artifactKey": artifact.key,
        "isReleased": False,
        **_dates(artifact),
    }


ARTIFACTS = SearchEngine(
    name="artifacts",
    queryset=lambda: Artifact.objects.select_related("target"),
    fields=artifact_fields,
    constraints=[
        Constraint("buildTargetPHIDs", "list<phid>", lambda qs, v: qs.filter(target__phid__in=v)),
    ],
)


def _register(method: str, engine: SearchEngine, what: str) -> None:
    conduit_method(
        method,
        f"Find {what}. Constraints: "
        + ", ".join(f"`{key}`" for key in engine.all_constraints())
        + ". Builtin queries: "
        + ", ".join(["all", *engine.builtin_queries])
        + ".",
        params=SEARCH_PARAMS,
        returns="map<string, wild>",
    )(engine.search)


_register("harbormaster.build.search", BUILDS, "builds")
_register("harbormaster.buildable.search", BUILDABLES, "buildables")
_register("harbormaster.target.search", TARGETS, "build targets")
_register("harbormaster.buildplan.search", BUILD_PLANS, "build plans")
_register("harbormaster.artifact.search", ARTIFACTS, "artifacts")
