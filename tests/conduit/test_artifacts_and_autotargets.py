"""``harbormaster.createartifact`` and ``harbormaster.queryautotargets``."""

import pytest

from builds.models import Artifact, Build, BuildPlan, BuildTarget
from tests.api.conftest import assert_nothing_stored
from tests.conduit.conftest import error, make_target, ok


def test_createartifact_stores_a_uri_artifact_for_the_targets_run(conduit, waiting_target):
    result = ok(
        conduit(
            "harbormaster.createartifact",
            buildTargetPHID=waiting_target.phid,
            artifactKey="ci.uri",
            artifactType="uri",
            artifactData={"uri": "https://ci.example.com/1", "ui.external": True},
        )
    )
    artifact = Artifact.objects.get()
    assert result == {"data": [{"phid": artifact.phid}]}
    assert (artifact.build_id, artifact.generation, artifact.data["ui.external"]) == (
        waiting_target.build_id,
        1,
        True,
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"artifactType": "host", "artifactData": {"drydockLeasePHID": "x"}},
            (
                "ERR-CONDUIT-CORE",
                'There is no implementation available for artifacts of type "host".',
            ),
        ),
        (
            {"artifactType": "uri", "artifactData": {}},
            ("ERR-CONDUIT-CALL", "Missing required parameters: uri"),
        ),
        (
            {"artifactType": "uri", "artifactData": {"uri": "ftp://x"}},
            (
                "ERR-CONDUIT-CORE",
                'The URI "ftp://x" is not valid: it must use one of these protocols: http, https.',
            ),
        ),
        (
            {"artifactType": "file", "artifactData": {"filePHID": 3}},
            (
                "ERR-CONDUIT-CORE",
                "Parameter 'filePHID' has invalid type. Expected type 'string', got type 'int'.",
            ),
        ),
    ],
)
def test_createartifact_refuses_bad_types_and_data(conduit, waiting_target, params, expected):
    envelope = conduit(
        "harbormaster.createartifact",
        buildTargetPHID=waiting_target.phid,
        artifactKey="k",
        **params,
    )
    assert error(envelope) == expected
    assert not Artifact.objects.exists()


def test_createartifact_refuses_an_unknown_target_and_a_duplicate_key(conduit, waiting_target):
    params = {"artifactKey": "k", "artifactType": "file", "artifactData": {"filePHID": "F1"}}
    unknown = "PHID-HMBT-aaaaaaaaaaaaaaaaaaaa"
    assert error(conduit("harbormaster.createartifact", buildTargetPHID=unknown, **params)) == (
        "ERR-CONDUIT-CORE",
        f'No such build target "{unknown}"!',
    )
    ok(conduit("harbormaster.createartifact", buildTargetPHID=waiting_target.phid, **params))
    other = {**params, "artifactData": {"filePHID": "F2"}}
    with assert_nothing_stored():
        code, info = error(
            conduit("harbormaster.createartifact", buildTargetPHID=waiting_target.phid, **other)
        )
    assert code == "ERR-CONDUIT-CORE"
    assert 'key "k" already exists' in info and "different data" in info


def create(conduit, target, **params) -> dict:
    """Call ``harbormaster.createartifact`` for ``target``; return the envelope."""
    return conduit("harbormaster.createartifact", buildTargetPHID=target.phid, **params)


URI_PARAMS = {
    "artifactKey": "ci.uri",
    "artifactType": "uri",
    "artifactData": {"uri": "https://ci.example.com/1", "ui.external": True},
}


def test_createartifact_repeated_with_the_same_data_returns_the_existing_artifact(
    conduit, waiting_target
):
    first = ok(create(conduit, waiting_target, **URI_PARAMS))
    with assert_nothing_stored():
        again = ok(create(conduit, waiting_target, **URI_PARAMS))
    assert again == first == {"data": [{"phid": Artifact.objects.get().phid}]}


def test_createartifact_repeated_as_plain_form_fields_compares_the_data_as_stored(
    conduit, waiting_target
):
    first = ok(create(conduit, waiting_target, **URI_PARAMS))
    fields = {
        "buildTargetPHID": waiting_target.phid,
        "artifactKey": "ci.uri",
        "artifactType": "uri",
        "artifactData[uri]": "https://ci.example.com/1",
        "artifactData[ui.external]": "1",  # stored as true, as the first call sent it
    }
    with assert_nothing_stored():
        assert ok(conduit.form("harbormaster.createartifact", fields)) == first


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"artifactType": "file", "artifactData": {"filePHID": "F1"}}, 'type "uri", not "file"'),
        ({"artifactData": {"uri": "https://ci.example.com/2"}}, "different data"),
        (
            {"artifactData": {"uri": "https://ci.example.com/1", "ui.external": False}},
            "different data",
        ),
    ],
)
def test_createartifact_under_an_existing_key_with_other_type_or_data_is_refused(
    conduit, waiting_target, changes, reason
):
    ok(create(conduit, waiting_target, **URI_PARAMS))
    with assert_nothing_stored():
        code, info = error(create(conduit, waiting_target, **{**URI_PARAMS, **changes}))
    assert code == "ERR-CONDUIT-CORE"
    assert 'key "ci.uri" already exists' in info and reason in info


def test_createartifact_of_a_key_another_target_of_the_run_made_is_refused(conduit, waiting_target):
    ok(create(conduit, waiting_target, **URI_PARAMS))
    sibling = make_target(waiting_target.build, step_key="deploy")
    with assert_nothing_stored():
        code, info = error(create(conduit, sibling, **URI_PARAMS))
    assert code == "ERR-CONDUIT-CORE"
    assert 'key "ci.uri" already exists' in info and "another build target" in info


def test_queryautotargets_creates_the_arcanist_build_with_its_targets(conduit):
    diff = "PHID-DIFF-aaaaaaaaaaaaaaaaaaaa"
    result = ok(
        conduit(
            "harbormaster.queryautotargets",
            objectPHID=diff,
            targetKeys=["arcanist.unit", "arcanist.lint"],
        )
    )
    target_map = result["targetMap"]
    assert list(target_map) == ["arcanist.unit", "arcanist.lint"]
    plan = BuildPlan.objects.get(auto_key="arcanist")
    build = Build.objects.get(plan=plan)
    assert build.buildable.object_phid == diff
    assert build.buildable.is_manual is False
    targets = {t.step_key: t for t in BuildTarget.objects.filter(build=build)}
    assert {k: t.phid for k, t in targets.items()} == target_map
    assert all(t.wait_for_message for t in targets.values())
    again = ok(
        conduit("harbormaster.queryautotargets", objectPHID=diff, targetKeys=["arcanist.lint"])
    )
    assert again["targetMap"] == {"arcanist.lint": target_map["arcanist.lint"]}
    assert Build.objects.count() == 1


def test_queryautotargets_refuses_unknown_keys_and_unbuildable_objects(conduit):
    assert error(
        conduit(
            "harbormaster.queryautotargets",
            objectPHID="PHID-DIFF-aaaaaaaaaaaaaaaaaaaa",
            targetKeys=["arcanist.nope"],
        )
    ) == ("ERR-CONDUIT-CORE", 'No build step provides autotarget "arcanist.nope"!')
    code, info = error(
        conduit(
            "harbormaster.queryautotargets",
            objectPHID="PHID-USER-aaaaaaaaaaaaaaaaaaaa",
            targetKeys=["arcanist.lint"],
        )
    )
    assert code == "ERR-CONDUIT-CORE"
    assert "is not a buildable object" in info
    assert not Build.objects.exists()


@pytest.mark.parametrize("uri", ["https://x/\x00", "https://x/\udc00"], ids=["nul", "surrogate"])
def test_createartifact_refuses_a_string_harbor_cannot_store(conduit, waiting_target, uri):
    envelope = conduit(
        "harbormaster.createartifact",
        buildTargetPHID=waiting_target.phid,
        artifactKey="k",
        artifactType="uri",
        artifactData={"uri": uri},
    )
    code, info = error(envelope)
    assert code == "ERR-CONDUIT-CORE"
    assert "artifactData.uri" in info and "Unexpected" not in info
    assert not Artifact.objects.exists()
