"""``POST /api/v1/sendmessage``: strict validation, the JSON error shape, and nothing stored
for a refused message (docs/harbormaster.md §2.3, docs/design.md §3.5, §5)."""

import json
from urllib.parse import urlencode

import pytest
from django.db import connection

from builds import engine
from builds.models import BuildMessage, BuildTarget, LintMessage, UnitResult
from messages_api.serializers import SendMessageSerializer, StartBuildSerializer
from tests.api.conftest import assert_nothing_stored, make_build, make_target

URL = "/api/v1/sendmessage"
UNIT = {"name": "test_login", "result": "pass", "duration": 0.25, "namespace": "auth"}
LINT = {
    "name": "Line Too Long",
    "code": "E501",
    "severity": "warning",
    "path": "app.py",
    "line": 3,
    "char": 81,
}


def message(target: BuildTarget, **changes) -> dict:
    """A valid verdict for ``target`` with one unit result and one lint message."""
    return {
        "receiver": target.phid,
        "type": "pass",
        "unit": [dict(UNIT)],
        "lint": [dict(LINT)],
        **changes,
    }


def with_unit(target: BuildTarget, **unit_changes) -> dict:
    """A verdict whose second unit result is UNIT changed by ``unit_changes`` (None drops a
    key), so a valid item precedes the bad one."""
    unit = {**UNIT, **unit_changes}
    return message(target, unit=[dict(UNIT), {k: v for k, v in unit.items() if v is not None}])


def with_lint(target: BuildTarget, **lint_changes) -> dict:
    lint = {**LINT, **lint_changes}
    return message(target, lint=[dict(LINT), {k: v for k, v in lint.items() if v is not None}])


def assert_error(response, status: int, code: str, *named: str) -> dict:
    """Assert the JSON error shape, and that the detail (or a field) names each of ``named``."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == code
    assert body["detail"]
    for name in named:
        assert name in body["detail"] or name in body.get("fields", {}), body
    return body


BAD_FIELDS = {
    "unknown type": (lambda t: message(t, type="explode"), "type", "explode"),
    "missing type": (lambda t: {"receiver": t.phid}, "type", "required"),
    "missing receiver": (lambda t: {"type": "pass"}, "receiver", "required"),
    "receiver not a string": (lambda t: message(t, receiver=12), "receiver", "string"),
    "unit result without a name": (lambda t: with_unit(t, name=None), "unit[1].name", "required"),
    "unit name not a string": (lambda t: with_unit(t, name=7), "unit[1].name", "string"),
    "unit without a result": (lambda t: with_unit(t, result=None), "unit[1].result", "required"),
    "unknown unit result": (
        lambda t: with_unit(t, result="exploded"),
        "unit[1].result",
        "exploded",
    ),
    "duration a word": (lambda t: with_unit(t, duration="fast"), "unit[1].duration", "number"),
    "duration a numeric string": (
        lambda t: with_unit(t, duration="1.5"),
        "unit[1].duration",
        "number",
    ),
    "duration a boolean": (lambda t: with_unit(t, duration=True), "unit[1].duration", "number"),
    "unknown unit format": (lambda t: with_unit(t, format="html"), "unit[1].format", "html"),
    "coverage not an object": (
        lambda t: with_unit(t, coverage="NNC"),
        "unit[1].coverage",
        "dictionary",
    ),
    "unit not a list": (lambda t: message(t, unit={"name": "x"}), "unit", "list"),
    "lint line a string": (lambda t: with_lint(t, line="3"), "lint[1].line", "integer"),
    "lint char a float": (lambda t: with_lint(t, char=4.0), "lint[1].char", "integer"),
    "lint line a boolean": (lambda t: with_lint(t, line=True), "lint[1].line", "integer"),
    "lint line null": (
        lambda t: with_lint(t) | {"lint": [{**LINT, "line": None}]},
        "lint[0].line",
        "null",
    ),
    "unknown severity": (
        lambda t: with_lint(t, severity="catastrophic"),
        "lint[1].severity",
        "catastrophic",
    ),
    "lint without a code": (lambda t: with_lint(t, code=None), "lint[1].code", "required"),
    "lint without a path": (lambda t: with_lint(t, path=None), "lint[1].path", "required"),
}


@pytest.mark.parametrize("case", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_it_refuses_an_invalid_field_naming_it_and_stores_nothing(client, waiting_target, case):
    build_payload, field, words = case
    with assert_nothing_stored():
        response = client.post(URL, build_payload(waiting_target), format="json")
    body = assert_error(response, 400, "validation_error", field)
    assert field in body["detail"]
    assert words.lower() in " ".join(body["fields"][field]).lower()


def test_it_lists_every_invalid_field_not_only_the_first(client, waiting_target):
    payload = message(waiting_target, type="explode", lint=[{**LINT, "severity": "meh"}])
    body = client.post(URL, payload, format="json").json()
    assert set(body["fields"]) == {"type", "lint[0].severity"}
    assert "and 1 more problem" in body["detail"]


def test_it_refuses_malformed_json_as_invalid_json(client, waiting_target):
    raw = json.dumps(message(waiting_target))[:-5]
    with assert_nothing_stored():
        response = client.post(URL, raw, content_type="application/json")
    assert_error(response, 400, "invalid_json", "JSON")


def test_it_refuses_a_json_body_that_is_not_an_object(client, waiting_target):
    with assert_nothing_stored():
        response = client.post(URL, [message(waiting_target)], format="json")
    assert_error(response, 400, "validation_error", "non_field_errors")


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_it_refuses_a_form_encoded_body_as_unsupported_media_type(
    client, waiting_target, content_type
):
    fields = {"receiver": waiting_target.phid, "type": "pass"}
    with assert_nothing_stored():
        if content_type == "multipart/form-data":
            response = client.post(URL, fields, format="multipart")
        else:
            response = client.post(URL, urlencode(fields), content_type=content_type)
    assert_error(response, 415, "unsupported_media_type", content_type)


@pytest.mark.parametrize(
    ("receiver", "message_type"),
    [
        ("PHID-HMBT-zzzzzzzzzzzzzzzzzzzz", "pass"),
        ("PHID-HMBD-zzzzzzzzzzzzzzzzzzzz", "abort"),
        ("PHID-HMBB-zzzzzzzzzzzzzzzzzzzz", "restart"),
        ("banana", "pass"),
    ],
)
def test_it_answers_404_for_an_unknown_receiver(client, waiting_target, receiver, message_type):
    payload = {"receiver": receiver, "type": message_type}
    with assert_nothing_stored():
        response = client.post(URL, payload, format="json")
    assert_error(response, 404, "not_found", receiver)


def test_it_refuses_a_command_sent_to_a_target(client, waiting_target):
    with assert_nothing_stored():
        response = client.post(URL, message(waiting_target, type="abort"), format="json")
    assert_error(response, 400, "invalid_message", "abort")


def test_it_refuses_unit_results_sent_to_a_build(client, waiting_target):
    payload = message(waiting_target, receiver=waiting_target.build.phid, type="pause")
    with assert_nothing_stored():
        response = client.post(URL, payload, format="json")
    assert_error(response, 400, "invalid_message", "build target")


def test_it_refuses_even_an_empty_unit_list_sent_to_a_build(client, waiting_target):
    payload = {"receiver": waiting_target.build.phid, "type": "pause", "unit": []}
    with assert_nothing_stored():
        response = client.post(URL, payload, format="json")
    assert_error(response, 400, "invalid_message", "build target")


def test_an_unknown_build_with_unit_results_is_not_found(client):
    payload = {"receiver": "PHID-HMBD-aaaaaaaaaaaaaaaaaaaa", "type": "pause", "unit": []}
    with assert_nothing_stored():
        response = client.post(URL, payload, format="json")
    assert_error(response, 404, "not_found", "PHID-HMBD-aaaaaaaaaaaaaaaaaaaa")


def test_it_answers_409_with_statuses_for_a_verdict_to_a_complete_target(
    client, waiting_plan, buildable
):
    build = make_build(waiting_plan, buildable, status="failed")
    target = make_target(build, status="failed")
    with assert_nothing_stored():
        response = client.post(URL, message(target), format="json")
    body = assert_error(response, 409, "conflict", "failed")
    assert body["target_status"] == "failed"
    assert body["build_status"] == "failed"


def test_a_repeat_of_the_deciding_verdict_without_a_key_still_answers_409(client, waiting_target):
    """Only Conduit takes the same sender's repeat as a success; REST has idempotency keys."""
    response = client.post(URL, message(waiting_target, unit=[], lint=[]), format="json")
    assert response.status_code == 202, response.content
    engine.update_build(waiting_target.build_id)
    with assert_nothing_stored():
        response = client.post(URL, message(waiting_target, unit=[], lint=[]), format="json")
    assert_error(response, 409, "conflict", "already passed")


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer api-" + "x" * 28, "Token whatever", "Bearer"],
    ids=["no token", "wrong token", "other scheme", "empty bearer"],
)
def test_it_answers_401_without_a_valid_token(anonymous_client, waiting_target, authorization):
    if authorization:
        anonymous_client.credentials(HTTP_AUTHORIZATION=authorization)
    with assert_nothing_stored():
        response = anonymous_client.post(URL, message(waiting_target), format="json")
    code = (
        "not_authenticated" if not authorization.startswith("Bearer") else "authentication_failed"
    )
    assert_error(response, 401, code)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_stores_a_verdict_with_its_unit_results_and_lint_messages(client, waiting_target, user):
    unit = {
        **UNIT,
        "engine": "pytest",
        "path": "tests/test_auth.py",
        "details": "ok",
        "format": "remarkup",
        "coverage": {"app.py": "NCU"},
    }
    lint = {**LINT, "description": "Wrap it."}
    payload = message(
        waiting_target, unit=[unit, {"name": "test_logout", "result": "skip"}], lint=[lint]
    )
    response = client.post(URL, payload, format="json")

    assert response.status_code == 202, response.content
    stored = BuildMessage.objects.get()
    assert response.json() == {
        "id": stored.id,
        "receiver": waiting_target.phid,
        "type": "pass",
        "status": "accepted",
    }
    assert (stored.target, stored.type, stored.author, stored.is_consumed) == (
        waiting_target,
        "pass",
        user,
        False,
    )
    units = {u.name: u for u in UnitResult.objects.filter(message=stored, target=waiting_target)}
    assert set(units) == {"test_login", "test_logout"}
    assert (units["test_login"].duration, units["test_login"].coverage) == (0.25, {"app.py": "NCU"})
    assert units["test_login"].format == "remarkup"
    assert units["test_logout"].result == "skip"
    lint_row = LintMessage.objects.get(message=stored, target=waiting_target)
    assert (lint_row.code, lint_row.line, lint_row.char, lint_row.description) == (
        "E501",
        3,
        81,
        "Wrap it.",
    )


def test_a_repeated_idempotency_key_answers_200_with_the_first_message(client, waiting_target):
    first = client.post(URL, message(waiting_target, idempotency_key="ci-run-7"), format="json")
    with assert_nothing_stored():
        again = client.post(URL, message(waiting_target, idempotency_key="ci-run-7"), format="json")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {**first.json(), "status": "duplicate"}


def test_a_command_to_a_build_is_accepted(client, waiting_target):
    build = waiting_target.build
    response = client.post(URL, {"receiver": build.phid, "type": "pause"}, format="json")
    assert response.status_code == 202, response.content
    assert BuildMessage.objects.get(build=build, target=None).type == "pause"


@pytest.fixture
def failing_insert(transactional_db, request):
    """Make every INSERT into the given table fail inside PostgreSQL (a real database error,
    raised after whatever the request inserted before it)."""
    table = request.param
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION api_test_fail() RETURNS trigger AS "
            "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER api_test_fail BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION api_test_fail()"
        )
    yield table
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER api_test_fail ON {table}")
        cursor.execute("DROP FUNCTION api_test_fail()")


@pytest.mark.parametrize(
    "failing_insert",
    [BuildMessage._meta.db_table, UnitResult._meta.db_table, LintMessage._meta.db_table],
    indirect=True,
)
def test_a_message_and_its_results_are_stored_in_one_transaction(
    client, waiting_target, failing_insert
):
    """Whichever of the three inserts fails, none of the others is left behind."""
    client.raise_request_exception = False
    with assert_nothing_stored():
        response = client.post(URL, message(waiting_target), format="json")
    assert response.status_code == 500


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_it_refuses_a_duration_too_large_to_be_finite(client, waiting_target, number):
    # Python reads 1e400 as infinity; stored, it broke every page showing the target.
    raw = json.dumps(message(waiting_target)).replace('"duration": 0.25', f'"duration": {number}')
    with assert_nothing_stored():
        response = client.post(URL, raw, content_type="application/json")
    body = assert_error(response, 400, "validation_error", "unit[0].duration")
    assert "finite" in " ".join(body["fields"]["unit[0].duration"])


@pytest.mark.parametrize("key", ["unit", "lint"])
@pytest.mark.parametrize("item", [None, "x", 3, []], ids=["null", "string", "number", "list"])
def test_it_refuses_an_item_that_is_not_an_object_naming_it(client, waiting_target, key, item):
    with assert_nothing_stored():
        response = client.post(URL, message(waiting_target, **{key: [item]}), format="json")
    assert_error(response, 400, "validation_error", f"{key}[0]")


@pytest.mark.parametrize("number", ["1e999", "-1e999"])
def test_it_refuses_a_coverage_number_too_large_to_be_finite(client, waiting_target, number):
    # PostgreSQL's json has no infinity: stored, the insert failed as a 500.
    coverage = f'"coverage": {{"app.py": "NUC", "ratio": [0.5, {number}]}}'
    raw = json.dumps(message(waiting_target)).replace('"duration": 0.25', coverage)
    with assert_nothing_stored():
        response = client.post(URL, raw, content_type="application/json")
    body = assert_error(response, 400, "validation_error", "unit[0].coverage")
    assert "ratio[1]" in " ".join(body["fields"]["unit[0].coverage"])


@pytest.mark.parametrize(
    ("extra", "path", "nearest"),
    [
        ({"idempotencyKey": "k"}, "idempotencyKey", "idempotency_key"),
        ({"units": []}, "units", "unit"),
        ({"unit": [{"name": "t", "result": "fail", "detials": "x"}]}, "unit[0].detials", "details"),
        ({"lint": [{**LINT, "sevrity": "error"}]}, "lint[0].sevrity", "severity"),
    ],
)
def test_a_misspelt_field_is_refused_naming_it_and_nothing_is_stored(
    client, waiting_target, extra, path, nearest
):
    response = client.post(URL, {**message(waiting_target), **extra}, format="json")
    assert_error(response, 400, "validation_error")
    assert f"did you mean '{nearest}'" in response.json()["fields"][path][0]
    assert not BuildMessage.objects.exists()


def test_an_idempotency_key_used_for_another_type_of_message_is_refused(client, waiting_target):
    first = client.post(URL, message(waiting_target, idempotency_key="run-1"), format="json")
    assert first.status_code == 202
    again = client.post(
        URL, {**message(waiting_target, idempotency_key="run-1"), "type": "fail"}, format="json"
    )
    assert_error(again, 409, "conflict")
    assert "was used for message" in again.json()["detail"]
    assert BuildMessage.objects.count() == 1


def test_a_message_without_results_builds_no_result_serializers():
    # DRF copies each field it builds for every request; the unit and lint serializers are
    # most of that copy, and most messages carry no results.
    bare = SendMessageSerializer(data={"receiver": "PHID-HMBT-x", "type": "pass"})
    assert set(bare.fields) == {"receiver", "type"}
    assert bare.is_valid(), bare.errors
    sent = SendMessageSerializer(data={"receiver": "PHID-HMBT-x", "type": "pass", "unit": [UNIT]})
    assert set(sent.fields) == {"receiver", "type", "unit"}
    assert sent.is_valid(), sent.errors
    assert sent.validated_data["unit"][0]["name"] == UNIT["name"]


def test_fields_with_a_default_are_built_without_input_and_required_ones_are_still_required():
    assert set(StartBuildSerializer(data={"plan": "p"}).fields) == {"plan", "buildable"}
    missing = SendMessageSerializer(data={"type": "pass", "idempotencyKey": "k"})
    assert not missing.is_valid()
    assert set(missing.errors) == {"idempotencyKey"}
    # The refusal names every declared field, built or not.
    assert "expected one of: receiver, type, unit, lint" in missing.errors["idempotencyKey"][0]
    missing = SendMessageSerializer(data={"type": "pass"})
    assert not missing.is_valid()
    assert set(missing.errors) == {"receiver"}
