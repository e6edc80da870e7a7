"""``POST /api/v1/junit``: a JUnit report becomes one message with its unit results."""

import io

import pytest
from rest_framework.test import APIClient

from builds.models import BuildMessage, UnitResult
from tests.api.conftest import assert_nothing_stored, make_build, make_target
from tests.conftest import make_plan
from tests.junit.conftest import sample


@pytest.fixture
def client(api_token) -> APIClient:
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token}")
    return api_client


@pytest.fixture
def target(buildable, user):
    plan = make_plan("ci", [{"key": "ci", "step_type": "http", "wait_for_message": True}])
    return make_target(make_build(plan, buildable, initiator=user))


def post_report(client, document: bytes, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(f"/api/v1/junit?{query}", document, content_type="application/xml")


def test_a_failing_report_sends_fail_with_every_unit_result(client, target, report_by_pytest):
    response = post_report(client, report_by_pytest.read_bytes(), receiver=target.phid)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["type"], body["status"], body["receiver"]) == ("fail", "accepted", target.phid)
    assert body["tests"] == {"total": 5, "pass": 2, "fail": 1, "broken": 1, "skip": 1}
    message = BuildMessage.objects.get()
    assert message.author.username == "alice"
    assert UnitResult.objects.filter(message=message).count() == 5
    assert set(UnitResult.objects.values_list("result", flat=True)) == {
        "pass",
        "fail",
        "broken",
        "skip",
    }


def test_a_passing_report_sends_pass(client, target, passing_report_by_pytest):
    response = post_report(client, passing_report_by_pytest.read_bytes(), receiver=target.phid)
    assert response.json()["type"] == "pass"


def test_type_work_sends_partial_results(client, target):
    response = post_report(client, sample("jenkins.xml"), receiver=target.phid, type="work")
    assert response.status_code == 202
    assert BuildMessage.objects.get().type == "work"


def test_a_multipart_upload_with_form_fields(client, target):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("TEST-com.example.AppTest.xml", sample("surefire.xml"))
    response = client.post(
        "/api/v1/junit", {"file": upload, "receiver": target.phid}, format="multipart"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["tests"]["skip"] == 1


def test_a_repeated_idempotency_key_stores_the_report_once(client, target):
    for expected in (202, 200):
        response = post_report(
            client, sample("gotestsum.xml"), receiver=target.phid, idempotency_key="run-7"
        )
        assert response.status_code == expected
    assert UnitResult.objects.count() == 3


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (b"<testsuite><testcase", "validation_error"),
        (b'<!DOCTYPE t [<!ENTITY a "b">]><testsuite/>', "validation_error"),
    ],
)
def test_unreadable_reports_store_nothing(client, target, document, error):
    with assert_nothing_stored():
        response = post_report(client, document, receiver=target.phid)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_an_unknown_receiver_is_404_and_a_missing_one_400(client, target):
    with assert_nothing_stored():
        unknown = post_report(
            client, sample("gotestsum.xml"), receiver="PHID-HMBT-aaaaaaaaaaaaaaaaaaaa"
        )
        missing = post_report(client, sample("gotestsum.xml"))
    assert unknown.status_code == 404
    assert missing.status_code == 400
    assert "receiver" in missing.json()["fields"]


def test_a_report_over_the_limit_is_413(client, target, settings):
    settings.HARBOR_JUNIT_MAX_BYTES = 100
    with assert_nothing_stored():
        response = post_report(client, sample("jenkins.xml"), receiver=target.phid)
    assert response.status_code == 413


def test_a_verdict_for_a_passed_target_is_409(client, buildable):
    plan = make_plan("done", [{"key": "ci", "step_type": "http", "wait_for_message": True}])
    target = make_target(make_build(plan, buildable), status="passed")
    response = post_report(client, sample("gotestsum.xml"), receiver=target.phid)
    assert response.status_code == 409


def test_reports_need_a_token(target):
    response = post_report(APIClient(), sample("gotestsum.xml"), receiver=target.phid)
    assert response.status_code == 401


def test_suites_nested_5000_deep_are_a_400(client, target):
    opening = '<testsuite name="s">' * 5000
    document = (opening + '<testcase name="t"/>' + "</testsuite>" * 5000).encode()
    with assert_nothing_stored():
        response = post_report(client, document, receiver=target.phid)
    assert response.status_code == 400, response.content
    assert "nested" in response.json()["detail"]


def test_a_chunked_report_without_content_length_is_read(client, target, report_by_pytest):
    # As gunicorn passes a chunked request on: no Content-Length, the dechunked bytes in
    # wsgi.input and wsgi.input_terminated set.
    response = client.generic(
        "POST",
        f"/api/v1/junit?receiver={target.phid}",
        content_type="application/xml",
        HTTP_TRANSFER_ENCODING="chunked",
        **{
            "wsgi.input": io.BytesIO(report_by_pytest.read_bytes()),
            "wsgi.input_terminated": True,
        },
    )
    assert response.status_code == 202, response.content
    assert response.json()["tests"]["total"] == 5


def test_a_chunked_report_over_the_limit_is_413(client, target, settings):
    settings.HARBOR_JUNIT_MAX_BYTES = 100
    with assert_nothing_stored():
        response = client.generic(
            "POST",
            f"/api/v1/junit?receiver={target.phid}",
            content_type="application/xml",
            HTTP_TRANSFER_ENCODING="chunked",
            **{"wsgi.input": io.BytesIO(sample("jenkins.xml")), "wsgi.input_terminated": True},
        )
    assert response.status_code == 413
