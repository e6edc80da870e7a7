"""``POST /hooks/<name>`` accepts a webhook only when it is signed the forge's own way:
GitHub ``X-Hub-Signature-256``, Gitea ``X-Gitea-Signature`` (hex HMAC-SHA256 of the raw
body), GitLab ``X-Gitlab-Token``. Anything else is 401 with nothing stored."""

import pytest
from django.test import Client

from tests.forges.conftest import (
    SECRETS,
    assert_nothing_stored,
    fixture_body,
    make_triggered_plan,
    post_body,
    post_fixture,
    signed_headers,
    trigger,
)

pytestmark = pytest.mark.django_db

PUSHES = {"github": "push__branch", "gitlab": "push_hook__branch", "gitea": "push__branch"}
SIGNATURE_HEADER = {
    "github": "HTTP_X_HUB_SIGNATURE_256",
    "gitlab": "HTTP_X_GITLAB_TOKEN",
    "gitea": "HTTP_X_GITEA_SIGNATURE",
}
EVENTS = {"github": "push", "gitlab": "Push Hook", "gitea": "push"}


@pytest.fixture
def plans():
    return [make_triggered_plan(f"ci-{forge}", trigger(forge)) for forge in PUSHES]


@pytest.mark.parametrize("forge", PUSHES)
def test_a_rightly_signed_push_is_accepted_and_starts_a_build(client, plans, forge):
    response = post_fixture(client, forge, PUSHES[forge], delivery="d-1")
    assert response.status_code == 202, response.content
    assert response.json()["delivery"] == "d-1"
    assert len(response.json()["builds"]) == 1


@pytest.mark.parametrize("forge", PUSHES)
def test_a_wrongly_signed_push_is_401_and_stores_nothing(client, plans, forge):
    body = fixture_body(forge, PUSHES[forge])
    wrong = {
        "github": "sha256=" + "0" * 64,
        "gitlab": "not-the-secret",
        "gitea": "0" * 64,
    }[forge]
    with assert_nothing_stored():
        response = post_body(client, forge, EVENTS[forge], body, **{SIGNATURE_HEADER[forge]: wrong})
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize("forge", PUSHES)
def test_an_unsigned_push_is_401_and_stores_nothing(client, plans, forge):
    body = fixture_body(forge, PUSHES[forge])
    with assert_nothing_stored():
        response = post_body(client, forge, EVENTS[forge], body, **{SIGNATURE_HEADER[forge]: None})
    assert response.status_code == 401


@pytest.mark.parametrize("forge", ["github", "gitea"])
def test_a_body_changed_after_signing_is_401(client, plans, forge):
    body = fixture_body(forge, PUSHES[forge])
    tampered = body.replace(b"refs/heads/main", b"refs/heads/evil")
    headers = signed_headers(forge, EVENTS[forge], body, "d-1")
    with assert_nothing_stored():
        response = client.post(
            f"/hooks/{forge}", tampered, content_type="application/json", **headers
        )
    assert response.status_code == 401


def test_a_signature_made_with_another_forges_secret_is_401(client, plans):
    body = fixture_body("github", "push__branch")
    headers = signed_headers("github", "push", body, "d-2", secret=SECRETS["gitea"])
    with assert_nothing_stored():
        response = client.post("/hooks/github", body, content_type="application/json", **headers)
    assert response.status_code == 401


def test_an_unknown_forge_name_is_401_like_a_wrong_signature(client, plans):
    body = fixture_body("github", "push__branch")
    with assert_nothing_stored():
        unknown = client.post(
            "/hooks/nosuchforge",
            body,
            content_type="application/json",
            HTTP_X_GITHUB_EVENT="push",
            HTTP_X_GITHUB_DELIVERY="d-3",
        )
        wrong = post_body(client, "github", "push", body, HTTP_X_HUB_SIGNATURE_256="sha256=00")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_a_webhook_needs_no_csrf_token(plans):
    csrf_checking = Client(enforce_csrf_checks=True)
    response = post_fixture(csrf_checking, "github", "push__branch")
    assert response.status_code == 202
