"""The OpenAPI description: served at /api/schema/, browsable at /api/schema/docs/ with
assets served locally (no CDN), and fuzzed with schemathesis: no request it makes from the
schema gets a 5xx."""

import re

import pytest
import schemathesis
from django.apps import apps
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings

from harbor.wsgi import application
from tests.api.conftest import make_build, make_target
from tests.conftest import make_plan
from tests.openapi.checks import CHECKS

pytestmark = pytest.mark.django_db


def test_the_schema_describes_the_rest_api_and_not_conduit(client: Client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert {"/api/v1/sendmessage", "/api/v1/builds", "/api/v1/junit"} <= set(paths)
    assert not any("{method_name}" in path for path in paths)
    body = paths["/api/v1/sendmessage"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/SendMessageRequest")
    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    assert "409" in paths["/api/v1/sendmessage"]["post"]["responses"]


def test_the_docs_page_loads_its_assets_from_harbor_itself(client: Client):
    page = client.get("/api/schema/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assets = [s for s in sources if "swagger-ui" in s]
    assert assets, html[:500]
    assert not any(s.startswith(("http://", "https://", "//")) for s in sources)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


@pytest.mark.parametrize(
    "typed, lands_on",
    [("/api/schema/docs", "/api/schema/docs/"), ("/api/schema?format=json", "/api/schema/")],
)
def test_the_schema_and_its_docs_typed_without_the_slash_lead_to_them(client, typed, lands_on):
    response = client.get(typed, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0].split("?")[0] == lands_on


EXAMPLE_TARGET = "PHID-HMBT-3xq2v7ak6m4bqdzr5hwe"  # the PHID the schema's examples use


@pytest.fixture
def token(api_token, buildable, user) -> str:
    """A token, and what the schema's examples name, so that they reach past the lookups:
    the plan ``external-ci`` (runnable), and a build whose target waits for a message under
    the examples' PHID."""
    make_plan("external-ci", [{"key": "ci", "step_type": "http", "wait_for_message": True}])
    plan = make_plan("fuzz", [{"key": "ci", "step_type": "http", "wait_for_message": True}])
    make_target(make_build(plan, buildable, initiator=user), phid=EXAMPLE_TARGET)
    return api_token


@pytest.fixture
def keep_test_connection():
    """Calls into the WSGI application must not close the test's database connection (its
    transaction holds the test's rows): keep the request signals from closing it, as
    Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def row_counts() -> dict[str, int]:
    """Rows in each of Harbor's tables (builds, messages, results, logs, outboxes…)."""
    models = [
        m for app in ("builds", "forges", "accounts") for m in apps.get_app_config(app).get_models()
    ]
    return {model._meta.label: model.objects.count() for model in models}


# Loaded through Harbor's WSGI application at collection (the schema view needs no
# database); the cases call the same application in this process.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_answer_matches_its_description_and_a_refusal_stores_nothing(
    case, token, keep_test_connection
):
    """No 5xx; the status, content type, headers and body of every answer as described; a
    request that breaks the schema refused; and a refusal (4xx) in the error shape, with
    every table as it was."""
    before = row_counts()
    response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
    if 400 <= response.status_code < 500:
        assert set(response.json()) >= {"error", "detail"}, response.text[:500]
        assert row_counts() == before, (case.method, case.formatted_path, response.text[:500])
