"""The JSON error shape for errors no request in the other tests can provoke directly, and
for paths under /api/ that lead nowhere."""

import pytest

from builds import engine
from messages_api.errors import flatten_errors, json_exception_handler


def test_a_plan_disabled_after_validation_answers_like_the_serializer(db):
    response = json_exception_handler(engine.PlanNotRunnable('Build plan "x" is disabled.'), {})
    assert response.status_code == 400
    assert response.data["error"] == "validation_error"
    assert response.data["fields"] == {"plan": ['Build plan "x" is disabled.']}


def test_a_refusal_without_statuses_still_carries_both_keys(db):
    response = json_exception_handler(engine.MessageRefused("No build can take it."), {})
    assert response.status_code == 409
    assert response.data == {
        "error": "conflict",
        "detail": "No build can take it.",
        "target_status": None,
        "build_status": None,
    }


def test_an_unexpected_exception_is_left_to_django_as_a_500(db):
    assert json_exception_handler(RuntimeError("bug"), {}) is None


def test_nested_errors_flatten_to_paths():
    detail = {
        "unit": [{}, {"name": ["This field is required."]}],
        "lint": {0: {"line": ["Expected an integer, got string."]}},
        "buildable": {"non_field_errors": ["Invalid data."]},
        "non_field_errors": ["Expected a dictionary."],
    }
    assert flatten_errors(detail) == {
        "unit[1].name": ["This field is required."],
        "lint[0].line": ["Expected an integer, got string."],
        "buildable": ["Invalid data."],
        "non_field_errors": ["Expected a dictionary."],
    }


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nosuch",
        "/api/v1/builds/1/nosuch",
        "/api/v2/builds",
        "/api/v1/builds/x",
        "/api/v1/builds/" + "1" * 5000 + "/commands",  # more digits than int() converts
    ],
    ids=lambda path: path[:30],
)
def test_an_unknown_api_path_answers_404_in_the_error_shape(client, method, path):
    response = client.generic(method, path, "{}", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "not_found"
    assert path in body["detail"]


def test_an_unknown_page_outside_the_api_is_still_an_html_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_an_unknown_conduit_method_still_answers_in_its_envelope(client):
    response = client.post("/api/harbormaster.nosuch")
    assert (response.status_code, response["Content-Type"]) == (200, "application/json")
    assert response.json()["error_code"] == "ERR-CONDUIT-CALL"
