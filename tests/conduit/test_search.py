"""The ``*.search`` methods and the deprecated query methods (docs/harbormaster.md §6.3–6.4)."""

import pytest

from builds.models import Artifact, Build, Buildable
from tests.conduit.conftest import error, make_build, make_target, ok


def test_target_search_shows_harbormasters_status_values(conduit, waiting_target):
    result = ok(
        conduit(
            "harbormaster.target.search", constraints={"buildPHIDs": [waiting_target.build.phid]}
        )
    )
    (item,) = result["data"]
    assert item["type"] == "HMBT"
    assert item["phid"] == waiting_target.phid
    assert item["fields"]["status"] == {"value": "target/waiting", "name": "Waiting for Message"}
    assert item["fields"]["buildGeneration"] == 1
    assert item["fields"]["epochCompleted"] is None
    assert item["fields"]["buildStepPHID"] == waiting_target.build.plan.steps.get().phid
    assert item["attachments"] == {}
    assert result["maps"] == {}
    assert result["query"] == {"queryKey": None}
    assert result["cursor"] == {"limit": 100, "after": None, "before": None, "order": None}


def test_target_search_filters_on_raw_target_statuses(conduit, build):
    waiting = make_target(build, "a")
    make_target(build, "b", status="passed")
    result = ok(conduit("harbormaster.target.search", constraints={"statuses": ["target/waiting"]}))
    assert [item["phid"] for item in result["data"]] == [waiting.phid]


def test_build_search_shows_status_name_and_ansi_color(conduit, build, user):
    result = ok(
        conduit(
            "harbormaster.build.search",
            constraints={"phids": [build.phid]},
            attachments={"querybuilds": True},
        )
    )
    (item,) = result["data"]
    assert item["fields"]["buildStatus"] == {
        "value": "building",
        "name": "Building",
        "color.ansi": "yellow",
    }
    assert item["fields"]["buildPlanPHID"] == build.plan.phid
    assert item["fields"]["initiatorPHID"] == user.phid
    assert item["fields"]["policy"] == {"view": "users", "edit": "users"}
    assert item["attachments"]["querybuilds"]["buildStatusName"] == "Building"


def test_build_search_builtin_queries_and_status_constraints(conduit, waiting_plan, buildable):
    passed = make_build(waiting_plan, buildable, status="passed")
    building = make_build(waiting_plan, buildable)
    completed = ok(conduit("harbormaster.build.search", queryKey="completed"))["data"]
    assert [b["id"] for b in completed] == [passed.pk]
    active = ok(conduit("harbormaster.build.search", constraints={"statuses": ["building"]}))
    assert [b["id"] for b in active["data"]] == [building.pk]


def test_search_pages_with_after_and_before_cursors(conduit, waiting_plan, buildable):
    builds = [make_build(waiting_plan, buildable) for _ in range(5)]
    ids = sorted((b.pk for b in builds), reverse=True)  # newest first
    first = ok(conduit("harbormaster.build.search", limit=2))
    assert [b["id"] for b in first["data"]] == ids[:2]
    assert first["cursor"]["after"] == str(ids[1])
    second = ok(conduit("harbormaster.build.search", limit=2, after=first["cursor"]["after"]))
    assert [b["id"] for b in second["data"]] == ids[2:4]
    back = ok(conduit("harbormaster.build.search", limit=2, before=second["cursor"]["before"]))
    assert [b["id"] for b in back["data"]] == ids[:2]
    oldest = ok(conduit("harbormaster.build.search", order="oldest", limit=1))
    assert oldest["data"][0]["id"] == ids[-1]


@pytest.mark.parametrize(
    ("params", "info"),
    [
        (
            {"limit": 101},
            "Maximum page size for Conduit API method calls is 100, but this call specified 101.",
        ),
        ({"limit": 0}, "Minimum page size for API searches is 1, but this call specified 0."),
        (
            {"constraints": {"colour": ["red"]}},
            'Constraint "colour" is not a valid constraint for this query.',
        ),
        ({"queryKey": "nosuch"}, 'Query key "nosuch" does not correspond to a valid query.'),
    ],
)
def test_search_refuses_bad_limits_constraints_and_query_keys(conduit, params, info):
    assert error(conduit("harbormaster.build.search", **params)) == ("ERR-CONDUIT-CORE", info)


def test_buildable_search_and_plan_search(conduit, build):
    buildable = build.buildable
    item = ok(conduit("harbormaster.buildable.search", constraints={"ids": [buildable.pk]}))[
        "data"
    ][0]
    assert item["fields"]["buildableStatus"] == {"value": buildable.status}
    assert item["fields"]["isManual"] is False
    plans = ok(conduit("harbormaster.buildplan.search", constraints={"match": "EXTERNAL"}))
    assert plans["data"][0]["fields"]["behaviors"]["restartable"] == {"value": "always"}


def test_artifact_search_by_target(conduit, waiting_target):
    Artifact.objects.create(
        target=waiting_target,
        build=waiting_target.build,
        generation=1,
        key="report",
        artifact_type="uri",
        data={"uri": "https://x"},
    )
    result = ok(
        conduit(
            "harbormaster.artifact.search", constraints={"buildTargetPHIDs": [waiting_target.phid]}
        )
    )
    assert result["data"][0]["fields"]["artifactKey"] == "report"


def test_querybuilds_flattens_each_build(conduit, build):
    result = ok(conduit("harbormaster.querybuilds", buildStatuses=["building"]))
    (item,) = result["data"]
    assert item["phid"] == build.phid
    assert item["buildStatusName"] == "Building"
    assert item["uri"].endswith(f"/builds/{build.pk}/")
    assert "cursor" in result


def test_querybuildables_uses_the_legacy_shape_and_clamps_the_limit(conduit, buildable):
    Buildable.objects.create(repository="r", commit="b" * 40, is_manual=True)
    result = ok(conduit("harbormaster.querybuildables", manualBuildables=False, limit=5000))
    (item,) = result["data"]
    assert item["monogram"] == f"B{buildable.pk}"
    assert item["isManualBuildable"] is False
    assert result["cursor"]["limit"] == 1000


def test_plain_form_constraints_are_read_loosely(conduit, build):
    fields = {"constraints[ids][0]": str(build.pk)}
    result = ok(conduit.form("harbormaster.build.search", fields))
    assert [b["id"] for b in result["data"]] == [build.pk]


def test_other_builds_are_not_found_by_id(conduit, build):
    assert (
        ok(conduit("harbormaster.build.search", constraints={"ids": [build.pk + 1]}))["data"] == []
    )
    assert Build.objects.count() == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"limit": "²"},
        {"after": "²"},
        {"before": "²"},
        {"constraints[ids][0]": "²"},
    ],
    ids=["limit", "after", "before", "ids"],
)
def test_search_refuses_non_ascii_digits_in_plain_form_fields(conduit, fields):
    code, info = error(conduit.form("harbormaster.build.search", fields))
    assert code == "ERR-CONDUIT-CORE"
    assert "Unexpected" not in info


def test_search_refuses_non_ascii_digits_in_a_json_cursor(conduit):
    code, info = error(conduit("harbormaster.build.search", after="٣"))
    assert code == "ERR-CONDUIT-CORE"
    assert "Cursor" in info


def test_search_refuses_a_nul_in_a_phid_constraint(conduit):
    envelope = conduit("harbormaster.target.search", constraints={"phids": ["PHID-HMBT-\x00"]})
    code, info = error(envelope)
    assert code == "ERR-CONDUIT-CORE"
    assert "constraints.phids[0]" in info and "NUL" in info


def test_a_nul_in_a_plain_form_field_is_refused_too(conduit):
    code, info = error(
        conduit.form("harbormaster.target.search", {"constraints[phids][0]": "PHID-\x00"})
    )
    assert code == "ERR-CONDUIT-CORE"
    assert "NUL" in info
