"""The Conduit transport: encodings, envelope, authentication, framework errors
(docs/harbormaster.md §6.1–6.2 and §9)."""

import json

import pytest

from accounts.models import ApiToken
from builds.models import BuildMessage
from tests.api.conftest import assert_nothing_stored
from tests.conduit.conftest import error, ok


def test_ping_needs_no_token_and_answers_in_the_envelope(anonymous):
    assert isinstance(ok(anonymous("conduit.ping")), str)


def test_whoami_describes_the_tokens_user(conduit, user):
    result = ok(conduit("user.whoami"))
    assert result["phid"] == user.phid
    assert result["userName"] == "alice"
    assert "activated" in result["roles"]


def test_a_bad_token_is_invalid_auth_with_harbormasters_text(anonymous):
    token = "api-aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    envelope = anonymous("user.whoami", __conduit__={"token": token})
    assert error(envelope) == ("ERR-INVALID-AUTH", f'API token "{token}" is not valid.')


def test_a_revoked_token_is_reported_as_expired(conduit, api_token):
    ApiToken.objects.update(revoked="2020-01-01T00:00:00Z")
    code, info = error(conduit("user.whoami"))
    assert code == "ERR-INVALID-AUTH"
    assert info == f'API token "{api_token}" was previously valid, but has expired.'


def test_a_token_of_the_wrong_length_is_invalid_auth(anonymous):
    code, info = error(anonymous("user.whoami", __conduit__={"token": "api-short"}))
    assert code == "ERR-INVALID-AUTH"
    assert "wrong length" in info


def test_no_credentials_is_invalid_session(anonymous):
    assert error(anonymous("user.whoami")) == (
        "ERR-INVALID-SESSION",
        "Session key is not present.",
    )


def test_plain_form_fields_authenticate_with_api_token(conduit, user):
    result = ok(conduit.form("user.whoami", {}))
    assert result["phid"] == user.phid


def test_per_key_console_encoding_decodes_each_value_as_json(conduit, api_token, user):
    fields = {"params[__conduit__]": json.dumps({"token": api_token})}
    assert ok(conduit.raw("user.whoami", fields))["phid"] == user.phid


def test_params_that_are_not_json_are_refused_with_harbormasters_text(conduit):
    envelope = conduit.raw("harbormaster.sendmessage", {"params": "{nope"})
    assert error(envelope) == (
        "ERR-CONDUIT-CORE",
        "Invalid parameter information was passed to method 'harbormaster.sendmessage'.",
    )


def test_an_unknown_method_is_a_call_error(conduit):
    assert error(conduit("harbormaster.nosuch")) == (
        "ERR-CONDUIT-CALL",
        'Conduit API method "harbormaster.nosuch" does not exist.',
    )


def test_unknown_parameters_are_refused_before_anything_runs(conduit, waiting_target):
    envelope = conduit(
        "harbormaster.sendmessage", receiver=waiting_target.phid, type="pass", colour="red"
    )
    assert error(envelope) == (
        "ERR-CONDUIT-CALL",
        "API Method \"harbormaster.sendmessage\" does not define these parameters: 'colour'.",
    )
    assert not BuildMessage.objects.exists()


def test_a_json_body_carries_no_parameters(client, api_token):
    body = json.dumps({"__conduit__": {"token": api_token}})
    response = client.post("/api/user.whoami", body, content_type="application/json")
    assert response.json()["error_code"] == "ERR-INVALID-SESSION"


def test_conduit_routes_do_not_shadow_the_rest_api(client):
    response = client.post("/api/v1/sendmessage", {}, content_type="application/json")
    assert response.status_code == 401


def test_conduit_query_lists_methods_with_parameter_types(conduit):
    methods = ok(conduit("conduit.query"))
    assert methods["harbormaster.sendmessage"]["params"]["receiver"] == "required string|phid"
    assert methods["harbormaster.sendmessage"]["params"]["buildTargetPHID"] == (
        "deprecated optional phid"
    )
    assert methods["harbormaster.build.search"]["params"]["limit"].startswith("optional int")
    assert {"conduit.ping", "user.whoami", "harbormaster.queryautotargets"} <= set(methods)


def test_getcapabilities_lists_token_authentication(anonymous):
    assert "token" in ok(anonymous("conduit.getcapabilities"))["authentication"]


HUGE = "1" * 5000  # Python's json and int() refuse more than 4,300 digits with a ValueError


def params_json(token: str, receiver: str, unit_json: str) -> dict:
    """Form fields of a ``params`` call whose ``unit`` is the raw JSON text ``unit_json``."""
    params = json.dumps({"receiver": receiver, "type": "work", "__conduit__": {"token": token}})
    return {"params": params[:-1] + f', "unit": {unit_json}}}'}


@pytest.mark.parametrize(
    ("unit_json", "words"),
    [
        (f'[{{"name": "t", "result": "pass", "duration": {HUGE}}}]', "more than 4300 digits"),
        ("[" * 100_000 + "]" * 100_000, "nested more than 32 levels"),
    ],
    ids=["5000 digits", "nested 100000 deep"],
)
def test_params_json_python_cannot_read_is_refused_saying_why(
    conduit, waiting_target, unit_json, words
):
    fields = params_json(conduit.token, waiting_target.phid, unit_json)
    with assert_nothing_stored():
        code, info = error(conduit.raw("harbormaster.sendmessage", fields))
    assert code == "ERR-CONDUIT-CORE"
    assert info.startswith("Invalid parameter information was passed to method")
    assert words in info


@pytest.mark.parametrize(
    ("value", "words"),
    [(HUGE, "more than 4300 digits"), ("[" * 100_000 + "]" * 100_000, "nested more than 32")],
    ids=["5000 digits", "nested 100000 deep"],
)
def test_a_console_value_python_cannot_read_is_refused_saying_why(
    conduit, waiting_target, value, words
):
    fields = {
        "params[__conduit__]": json.dumps({"token": conduit.token}),
        "params[receiver]": json.dumps(waiting_target.phid),
        "params[type]": '"work"',
        "params[unit]": value,
    }
    with assert_nothing_stored():
        code, info = error(conduit.raw("harbormaster.sendmessage", fields))
    assert code == "ERR-CONDUIT-CORE"
    assert "'unit'" in info and words in info
    assert HUGE not in info


def test_params_nested_deeper_than_the_rest_api_allows_are_refused(conduit, waiting_target):
    coverage = '{"a": ' + "[" * 30 + "]" * 30 + "}"  # 34 levels below the params object
    unit_json = f'[{{"name": "t", "result": "pass", "coverage": {coverage}}}]'
    with assert_nothing_stored():
        code, info = error(
            conduit.raw(
                "harbormaster.sendmessage",
                params_json(conduit.token, waiting_target.phid, unit_json),
            )
        )
    assert code == "ERR-CONDUIT-CORE"
    assert "unit[0].coverage.a" in info and "nested more than 32 levels" in info


def test_plain_form_keys_nested_too_deeply_are_refused(conduit, waiting_target):
    fields = {"receiver": waiting_target.phid, "type": "work", "unit" + "[0]" * 5000: "x"}
    with assert_nothing_stored():
        code, info = error(conduit.form("harbormaster.sendmessage", fields))
    assert code == "ERR-CONDUIT-CORE"
    assert "nested more than 32 levels" in info


@pytest.mark.parametrize("digits", ["9" * 30, HUGE], ids=["30 digits", "5000 digits"])
def test_a_buildable_monogram_with_too_many_digits_is_unable_to_load(conduit, digits):
    with assert_nothing_stored():
        envelope = conduit("harbormaster.sendmessage", receiver=f"B{digits}", type="pause")
    assert error(envelope) == (
        "ERR-CONDUIT-CORE",
        f'Unable to load object "B{digits}" to receive message.',
    )


def test_a_form_body_that_is_not_utf8_is_refused_not_replaced(conduit, waiting_target):
    fields = f"api.token={conduit.token}&receiver={waiting_target.phid}&type=work"
    body = (fields + "&unit[0][name]=caf%E9&unit[0][result]=pass").encode()
    with assert_nothing_stored():
        code, info = error(conduit.raw_bytes("harbormaster.sendmessage", body))
    assert code == "ERR-CONDUIT-CORE"
    assert "not UTF-8" in info


def test_a_content_length_that_is_not_a_number_is_no_length(conduit):
    body = f"api.token={conduit.token}".encode()
    envelope = conduit.raw_bytes("user.whoami", body, CONTENT_LENGTH="12abc")
    # Django reads no body then, so no token arrives.
    assert error(envelope) == ("ERR-INVALID-SESSION", "Session key is not present.")
