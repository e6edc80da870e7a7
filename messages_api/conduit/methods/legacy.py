"""The deprecated query methods ``harbormaster.querybuilds`` and
``harbormaster.querybuildables`` (docs/harbormaster.md §6.4), still called by older clients."""

from typing import Any

from builds.models import Buildable
from messages_api.conduit.methods.harbormaster_search import (
    BUILDABLE_STATUS_NAMES,
    BUILDS,
    buildable_fields,
)
from messages_api.conduit.params import get_typed
from messages_api.conduit.registry import Call, conduit_method
from messages_api.conduit.search import loosen, paginate

PAGER_PARAMS = {
    "before": "optional string",
    "after": "optional string",
    "limit": "optional int (default = 100)",
}
LEGACY_MAX_LIMIT = 1000


def _list(call: Call, key: str, spec: str) -> Any:
    value = call.params.get(key)
    if value is not None and not call.strict:
        value = loosen(spec, value)
    return get_typed({key: value}, key, spec)


@conduit_method(
    "harbormaster.querybuilds",
    "Query builds (deprecated: use harbormaster.build.search).",
    params={
        "ids": "optional list<id>",
        "phids": "optional list<phid>",
        "buildStatuses": "optional list<string>",
        "buildablePHIDs": "optional list<phid>",
        "buildPlanPHIDs": "optional list<phid>",
        **PAGER_PARAMS,
    },
)
def querybuilds(call: Call) -> dict:
    """``harbormaster.build.search`` with the ``querybuilds`` attachment, each result
    flattened into one map (as ``HarbormasterQueryBuildsConduitAPIMethod`` does)."""
    names = {
        "ids": ("ids", "list<int>"),
        "phids": ("phids", "list<phid>"),
        "buildStatuses": ("statuses", "list<string>"),
        "buildablePHIDs": ("buildables", "list<phid>"),
        "buildPlanPHIDs": ("plans", "list<phid>"),
    }
    constraints = {}
    for key, (constraint, spec) in names.items():
        value = _list(call, key, spec)
        if value:
            constraints[constraint] = value
    params = {k: v for k, v in call.params.items() if k in PAGER_PARAMS}
    params.update(constraints=constraints, attachments={"querybuilds": True})
    result = BUILDS.search(Call(call.method, params, call.user, True, call.request))
    result["data"] = [
        {
            "id": item["id"],
            "type": item["type"],
            "phid": item["phid"],
            **item["fields"],
            **item["attachments"]["querybuilds"],
        }
        for item in result["data"]
    ]
    return result


@conduit_method(
    "harbormaster.querybuildables",
    "Query buildables (deprecated: use harbormaster.buildable.search).",
    params={
        "ids": "optional list<id>",
        "phids": "optional list<phid>",
        "buildablePHIDs": "optional list<phid>",
        "containerPHIDs": "optional list<phid>",
        "manualBuildables": "optional bool",
        **PAGER_PARAMS,
    },
)
def querybuildables(call: Call) -> dict:
    """``{"data": [{"id", "phid", "monogram", "uri", "buildableStatus",
    "buildableStatusName", "buildablePHID", "containerPHID", "isManualBuildable"}],
    "cursor": {"limit", "after", "before"}}``, newest first; ``limit`` is clamped to
    1…1000 as Harbormaster's legacy pager does."""
    queryset = Buildable.objects.all()
    if ids := _list(call, "ids", "list<int>"):
        queryset = queryset.filter(pk__in=ids)
    if phid_list := _list(call, "phids", "list<phid>"):
        queryset = queryset.filter(phid__in=phid_list)
    if objects := _list(call, "buildablePHIDs", "list<phid>"):
        queryset = queryset.filter(object_phid__in=objects)
    if _list(call, "containerPHIDs", "list<phid>"):
        queryset = queryset.none()  # Harbor's buildables have no container
    manual = _list(call, "manualBuildables", "bool")
    if manual is not None:
        queryset = queryset.filter(is_manual=manual)
    params = {k: v for k, v in call.params.items() if k in PAGER_PARAMS}
    params["limit"] = _clamped_limit(call)
    page = paginate(queryset, params, True, max_limit=LEGACY_MAX_LIMIT)
    return {
        "data": [_legacy_buildable(buildable) for buildable in page.rows],
        "cursor": {"limit": page.limit, "after": page.after, "before": page.before},
    }


def _clamped_limit(call: Call) -> int:
    limit = _list(call, "limit", "int")
    return 100 if limit is None else min(max(limit, 1), LEGACY_MAX_LIMIT)


def _legacy_buildable(buildable: Buildable) -> dict:
    fields = buildable_fields(buildable)
    return {
        "id": buildable.pk,
        "phid": buildable.phid,
        "monogram": f"B{buildable.pk}",
        "uri": fields["uri"],
        "buildableStatus": buildable.status,
        "buildableStatusName": BUILDABLE_STATUS_NAMES.get(buildable.status, buildable.status),
        "buildablePHID": fields["objectPHID"],
        "containerPHID": None,
        "isManualBuildable": buildable.is_manual,
    }
