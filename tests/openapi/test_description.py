"""Every REST operation is described: a summary and a description, a schema for its success
answer, the errors it may answer in the API's error shape, and the query parameters its view
reads. An endpoint added without its description fails here."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from messages_api.junit_views import JUnitOptionsSerializer
from messages_api.logs import LogRangeSerializer
from messages_api.plans import PlanQuerySerializer
from messages_api.serializers import BuildFilterSerializer

METHODS = ("get", "post", "put", "patch", "delete")
# The query parameters each operation's view reads, from the serializer that validates them.
QUERY_SERIALIZERS = {
    ("/api/v1/builds", "get"): BuildFilterSerializer,
    ("/api/v1/logs/{id}", "get"): LogRangeSerializer,
    ("/api/v1/junit", "post"): JUnitOptionsSerializer,
    ("/api/v1/plans", "post"): PlanQuerySerializer,
    ("/api/v1/plans/{plan}", "put"): PlanQuerySerializer,
}


@pytest.fixture(scope="module")
def schema() -> dict:
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def rest_routes() -> set[str]:
    """Every ``/api/v1/…`` route, written as the schema writes paths (``{id}``)."""
    found = set()
    pending = [("/", pattern) for pattern in get_resolver().url_patterns]
    while pending:
        prefix, pattern = pending.pop()
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            pending += [(route, child) for child in pattern.url_patterns]
        elif isinstance(pattern, URLPattern) and route.startswith("/api/v1/"):
            found.add(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route).replace("{pk}", "{id}"))
    return found


def error_ref(response: dict) -> str:
    return response["content"]["application/json"]["schema"]["$ref"]


def test_every_rest_route_is_in_the_schema(schema):
    assert rest_routes() <= set(schema["paths"])


def test_every_operation_has_a_summary_a_description_and_its_own_id(schema):
    ids = []
    for path, method, operation in operations(schema):
        assert operation.get("summary"), f"{method} {path} has no summary"
        assert len(operation.get("description", "")) > 40, f"{method} {path} has no description"
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids)) >= 10


def test_every_operation_describes_its_success_answer(schema):
    for path, method, operation in operations(schema):
        successes = {code: r for code, r in operation["responses"].items() if code[0] == "2"}
        assert successes, f"{method} {path} documents no success"
        for code, response in successes.items():
            content = response.get("content", {})
            assert content, f"{method} {path} {code} has no body schema"
            for media in content.values():
                assert media.get("schema"), f"{method} {path} {code} has no body schema"


def test_every_operation_describes_its_errors_in_the_error_shape(schema):
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        for code in ("401", "403", "503"):
            assert code in responses, f"{method} {path} does not document {code}"
        for code, response in responses.items():
            if code[0] in "45":
                assert error_ref(response).endswith("/Error"), f"{method} {path} {code}"
        assert "Retry-After" in responses["503"]["headers"], f"{method} {path}"


@pytest.mark.parametrize(("path", "method"), list(QUERY_SERIALIZERS))
def test_every_query_parameter_a_view_reads_is_documented(schema, path, method):
    documented = {
        p["name"] for p in schema["paths"][path][method].get("parameters", []) if p["in"] == "query"
    }
    assert set(QUERY_SERIALIZERS[path, method]().fields) <= documented


def test_the_operations_that_take_a_body_document_it_with_an_example(schema):
    for path, method, operation in operations(schema):
        if method not in ("post", "put"):
            continue
        content = operation["requestBody"]["content"]
        assert any("examples" in media for media in content.values()), f"{method} {path}"


def test_the_schema_validates_without_a_warning(tmp_path: Path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )


def test_a_json_body_is_described_as_taking_its_declared_keys_and_no_others(schema):
    """The API refuses an undeclared key (``RefusesUnknownFields``); the schema says so, so
    that a client or a fuzzer does not take extra keys for allowed ones."""
    components = schema["components"]["schemas"]
    for _, method, operation in operations(schema):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if method == "post" and body:
            name = body["schema"]["$ref"].rsplit("/", 1)[1]
            assert components[name]["additionalProperties"] is False, name


def test_starting_a_build_links_to_reading_it_and_reading_it_to_messaging_its_target(schema):
    paths = schema["paths"]
    started = paths["/api/v1/builds"]["post"]["responses"]["201"]["links"]
    assert started["ReadTheBuild"] == {
        "operationId": "builds_retrieve",
        "parameters": {"id": "$response.body#/id"},
        "description": started["ReadTheBuild"]["description"],
    }
    read = paths["/api/v1/builds/{id}"]["get"]["responses"]["200"]["links"]
    message = read["MessageItsFirstTarget"]
    assert message["operationId"] == "sendmessage"
    assert message["requestBody"] == {"receiver": "$response.body#/targets/0/phid"}
    ids = {operation["operationId"] for _, _, operation in operations(schema)}
    linked = {
        link["operationId"]
        for _, _, operation in operations(schema)
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    }
    assert linked <= ids
