"""The JSON error shape for errors no request in the other tests can provoke directly."""

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
