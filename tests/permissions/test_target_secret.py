"""Per-target callback secrets: ``${target.secret}`` authenticates messages to that one
target only, is derived rather than stored, and is masked wherever it would be shown."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from builds.models import BuildMessage
from builds.secrets import MASK, mask_secrets, target_secret
from builds.variables import substitute, target_variables, uri_escape
from tests.api.conftest import assert_nothing_stored
from tests.api.test_sendmessage import assert_error, message
from tests.permissions.conftest import make_target

SEND = "/api/v1/sendmessage"


def secret_client(secret: str) -> APIClient:
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Harbor-Target-Secret {secret}")
    return api_client


def test_a_target_secret_is_32_url_safe_characters_stable_per_target(release_target):
    secret = target_secret(release_target.phid)
    assert len(secret) == 32
    assert secret == uri_escape(secret)
    assert secret == target_secret(release_target.phid)
    assert secret != target_secret("PHID-HMBT-" + "z" * 20)


def test_changing_secret_key_changes_every_target_secret(release_target):
    before = target_secret(release_target.phid)
    with override_settings(SECRET_KEY="another-key"):
        assert target_secret(release_target.phid) != before


def test_the_secret_is_a_variable_of_the_target_and_never_stored(release_target):
    variables = target_variables(release_target)
    assert variables["target.secret"] == target_secret(release_target.phid)
    release_target.refresh_from_db()
    assert "target.secret" not in release_target.variables
    uri = substitute("http://ci/run?cb=${target.secret}", variables, uri_escape)
    assert uri.endswith(target_secret(release_target.phid))


def test_the_secret_lets_an_outside_system_send_a_verdict_to_its_target(release_target):
    """Even on a plan with a run group: the secret stands for the target, not for a user."""
    response = secret_client(target_secret(release_target.phid)).post(
        SEND, message(release_target), format="json"
    )
    assert response.status_code == 202, response.content
    stored = BuildMessage.objects.get()
    assert (stored.target, stored.type, stored.author) == (release_target, "pass", None)


def test_the_secret_of_one_target_is_refused_for_another_target(release_target):
    other = make_target(release_target.build, step_key="other")
    with assert_nothing_stored():
        response = secret_client(target_secret(release_target.phid)).post(
            SEND, message(other), format="json"
        )
    assert_error(response, 403, "permission_denied", "not the receiver's")


@pytest.mark.parametrize("command", ["abort", "restart"])
def test_the_secret_may_not_command_the_targets_build(release_target, command):
    payload = {"receiver": release_target.build.phid, "type": command}
    with assert_nothing_stored():
        response = secret_client(target_secret(release_target.phid)).post(
            SEND, payload, format="json"
        )
    assert_error(response, 403, "permission_denied")


def test_a_wrong_secret_is_refused_with_403(release_target):
    with assert_nothing_stored():
        response = secret_client("x" * 32).post(SEND, message(release_target), format="json")
    assert_error(response, 403, "permission_denied")


def test_a_malformed_secret_header_is_401(release_target):
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION="Harbor-Target-Secret a b")
    with assert_nothing_stored():
        response = api_client.post(SEND, message(release_target), format="json")
    assert_error(response, 401, "authentication_failed", "Harbor-Target-Secret")


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/builds"),
        ("get", "/api/v1/builds/{build}"),
        ("get", "/api/v1/targets/{target}"),
    ],
)
def test_the_secret_opens_no_other_endpoint(release_target, method, url):
    url = url.format(build=release_target.build_id, target=release_target.pk)
    response = getattr(secret_client(target_secret(release_target.phid)), method)(url)
    assert_error(response, 403, "permission_denied", "own build target")


def test_the_secret_may_not_start_builds(release_target):
    with assert_nothing_stored():
        response = secret_client(target_secret(release_target.phid)).post(
            "/api/v1/builds", {"plan": "release"}, format="json"
        )
    assert_error(response, 403, "permission_denied")


def test_the_secret_may_read_the_messages_of_its_own_target_only(release_target, member):
    holder = secret_client(target_secret(release_target.phid))
    own = holder.post(SEND, message(release_target), format="json").json()["id"]
    other = make_target(release_target.build, step_key="other")
    others = secret_client(target_secret(other.phid)).post(SEND, message(other), format="json")
    assert holder.get(f"/api/v1/messages/{own}").json()["consumed"] is False
    response = holder.get(f"/api/v1/messages/{others.json()['id']}")
    assert_error(response, 403, "permission_denied")


def test_masking_hides_the_secret_raw_and_uri_encoded(release_target):
    variables = {"target.secret": "ab/c+d=="}  # characters a URI or a form would encode
    text = "http://ci/ab/c+d==?x=ab/c%2Bd%3D%3D&y=ab%2Fc%2Bd%3D%3D Authorization: ab/c+d=="
    assert mask_secrets(text, variables) == (
        f"http://ci/{MASK}?x={MASK}&y={MASK} Authorization: {MASK}"
    )


def test_masking_a_substituted_uri_leaves_the_rest_readable(release_target):
    variables = target_variables(release_target)
    uri = substitute(
        "http://ci/run?target=${target.phid}&secret=${target.secret}", variables, uri_escape
    )
    shown = mask_secrets(uri, variables)
    assert shown == f"http://ci/run?target={release_target.phid}&secret={MASK}"
    assert target_secret(release_target.phid) not in shown


def test_masking_leaves_text_alone_without_a_secret():
    assert mask_secrets("http://ci/run", {"target.secret": None}) == "http://ci/run"
    assert mask_secrets("http://ci/run", {}) == "http://ci/run"
