"""Harbor driven by the ``phabricator`` package from PyPI, unmodified, as an outside user
would: once with the method list bundled in the package (which knows ``sendmessage`` only
with ``buildTargetPHID`` and has no ``*.search`` methods), once after ``update_interfaces()``
(which loads the list from ``conduit.query``)."""

import pytest
from phabricator import APIError, Phabricator

from builds import engine
from builds.models import Artifact, Build, BuildMessage, LintMessage, UnitResult
from tests.conduit.conftest import make_build, make_target
from tests.conftest import make_plan
from tests.workers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
UNKNOWN = "PHID-HMBT-aaaaaaaaaaaaaaaaaaaa"
UNIT = [
    {"name": "test_ok", "result": "pass", "namespace": "tests.a", "duration": 0.01},
    {"name": "test_bad", "result": "fail", "details": "assert 1 == 2"},
]
LINT = [
    {
        "name": "Line too long",
        "code": "E501",
        "severity": "warning",
        "path": "a.py",
        "line": 10,
        "char": 101,
    }
]


@pytest.fixture
def api(live_server, api_token) -> Phabricator:
    return Phabricator(host=f"{live_server.url}/api/", token=api_token, timeout=30)


@pytest.fixture
def updated_api(api) -> Phabricator:
    api.update_interfaces()
    return api


@pytest.fixture
def plan(db):
    return make_plan("external-ci", [{"key": "ci", "step_type": "http", "wait_for_message": True}])


@pytest.fixture
def target(plan, buildable, user):
    return make_target(make_build(plan, buildable, initiator=user))


def status_after_a_pass(build_id: int) -> str:
    engine.update_build(build_id)
    return Build.objects.get(pk=build_id).status


def test_bundled_interface_sends_pass_with_unit_and_lint(api, target):
    assert api.user.whoami().userName == "alice"
    api.harbormaster.sendmessage(buildTargetPHID=target.phid, type="pass", unit=UNIT, lint=LINT)
    assert BuildMessage.objects.get().type == "pass"
    assert UnitResult.objects.count() == 2
    assert LintMessage.objects.get().char == 101
    assert status_after_a_pass(target.build_id) == "passed"


def test_bundled_interface_sends_work_then_fail(api, target):
    api.harbormaster.sendmessage(buildTargetPHID=target.phid, type="work", unit=UNIT[:1])
    api.harbormaster.sendmessage(buildTargetPHID=target.phid, type="fail", unit=UNIT[1:])
    assert list(BuildMessage.objects.order_by("id").values_list("type", flat=True)) == [
        "work",
        "fail",
    ]
    assert status_after_a_pass(target.build_id) == "failed"


def test_bundled_interface_creates_an_artifact_and_queries(api, target):
    result = api.harbormaster.createartifact(
        buildTargetPHID=target.phid,
        artifactKey="ci.uri",
        artifactType="uri",
        artifactData={"uri": "https://ci.example.com/run/1", "name": "CI run"},
    )
    assert result["data"][0]["phid"] == Artifact.objects.get().phid
    builds = api.harbormaster.querybuilds(buildStatuses=["building"])
    assert [b["phid"] for b in builds["data"]] == [target.build.phid]
    buildables = api.harbormaster.querybuildables()
    assert buildables["data"][0]["phid"] == target.build.buildable.phid


def test_bundled_interface_gets_autotargets(api):
    result = api.harbormaster.queryautotargets(
        objectPHID="PHID-DIFF-bbbbbbbbbbbbbbbbbbbb", targetKeys=["arcanist.lint", "arcanist.unit"]
    )
    assert set(result["targetMap"]) == {"arcanist.lint", "arcanist.unit"}
    assert all(phid.startswith("PHID-HMBT-") for phid in result["targetMap"].values())


def test_bundled_interface_receives_error_envelopes(api, live_server, target):
    with pytest.raises(APIError) as unknown:
        api.harbormaster.sendmessage(buildTargetPHID=UNKNOWN, type="pass")
    assert unknown.value.code == "ERR-CONDUIT-CORE"
    assert unknown.value.message == f'Unable to load object "{UNKNOWN}" to receive message.'
    with pytest.raises(APIError) as missing:
        api.harbormaster.sendmessage(buildTargetPHID=target.phid, type="pass", unit=[{"name": "t"}])
    assert (missing.value.code, missing.value.message) == (
        "ERR-CONDUIT-CALL",
        "Missing required parameters: result",
    )
    with pytest.raises(APIError) as no_method:  # not in the bundled list: a wrong path
        api.harbormaster.build.search()
    assert no_method.value.code == "ERR-CONDUIT-CALL"
    bad_token = Phabricator(
        host=f"{live_server.url}/api/", token="api-aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    )
    with pytest.raises(APIError) as invalid:
        bad_token.user.whoami()
    assert invalid.value.code == "ERR-INVALID-AUTH"
    assert not BuildMessage.objects.exists()


def test_updated_interface_sends_with_receiver_and_searches(updated_api, target):
    api = updated_api
    api.harbormaster.sendmessage(receiver=target.phid, type="pass", unit=UNIT, lint=LINT)
    assert status_after_a_pass(target.build_id) == "passed"
    builds = api.harbormaster.build.search(constraints={"statuses": ["passed"]})
    assert builds["data"][0]["fields"]["buildStatus"]["value"] == "passed"
    targets = api.harbormaster.target.search(constraints={"buildPHIDs": [target.build.phid]})
    assert targets["data"][0]["fields"]["status"]["value"] == "target/passed"
    buildables = api.harbormaster.buildable.search(
        constraints={"phids": [target.build.buildable.phid]}
    )
    assert buildables["data"][0]["phid"] == target.build.buildable.phid
    plans = api.harbormaster.buildplan.search()
    assert plans["data"][0]["fields"]["name"] == "external-ci"


def test_updated_interface_creates_and_finds_artifacts_and_autotargets(updated_api, target):
    api = updated_api
    api.harbormaster.createartifact(
        buildTargetPHID=target.phid,
        artifactKey="log",
        artifactType="file",
        artifactData={"filePHID": "PHID-FILE-x"},
    )
    found = api.harbormaster.artifact.search(constraints={"buildTargetPHIDs": [target.phid]})
    assert found["data"][0]["fields"]["artifactType"] == "file"
    autotargets = api.harbormaster.queryautotargets(
        objectPHID="PHID-CMIT-cccccccccccccccccccc", targetKeys=["arcanist.unit"]
    )
    assert list(autotargets["targetMap"]) == ["arcanist.unit"]


def test_updated_interface_receives_error_envelopes(updated_api, plan, buildable):
    build = make_build(plan, buildable, status="passed")
    with pytest.raises(APIError) as refused:
        updated_api.harbormaster.sendmessage(receiver=build.phid, type="abort")
    assert refused.value.code == "ERR-CONDUIT-CORE"
    assert refused.value.message.startswith("Unable to Abort Build:")
    with pytest.raises(APIError) as too_many:
        updated_api.harbormaster.target.search(limit=500)
    assert too_many.value.message.startswith("Maximum page size for Conduit API method calls")


@pytest.mark.workers
def test_arc_style_flow_with_real_workers(api, live_server, api_token, celery_workers):
    """What ``arc diff`` does: get the autotargets, which workers run to waiting, then send
    lint and unit verdicts with the deprecated ``buildTargetPHID`` (the bundled list's
    form); the autobuild passes. Searches use a second client that loaded the method list."""
    searcher = Phabricator(host=f"{live_server.url}/api/", token=api_token, timeout=30)
    searcher.update_interfaces()
    target_map = api.harbormaster.queryautotargets(
        objectPHID="PHID-DIFF-dddddddddddddddddddd", targetKeys=["arcanist.lint", "arcanist.unit"]
    )["targetMap"]

    def all_waiting():
        found = searcher.harbormaster.target.search(
            constraints={"phids": list(target_map.values()), "statuses": ["target/waiting"]}
        )["data"]
        return len(found) == 2 or None

    wait_for(all_waiting, timeout=60, message="autotargets never waited")
    api.harbormaster.sendmessage(
        buildTargetPHID=target_map["arcanist.lint"], type="pass", lint=LINT
    )
    api.harbormaster.sendmessage(
        buildTargetPHID=target_map["arcanist.unit"], type="pass", unit=UNIT[:1]
    )

    def passed():
        builds = searcher.harbormaster.build.search(constraints={"statuses": ["passed"]})
        builds = builds["data"]
        return builds or None

    (build,) = wait_for(passed, timeout=60, message="the autobuild never passed")
    assert build["fields"]["name"] == "arc lint + arc unit"
