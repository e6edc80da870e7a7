"""API tokens: stored as SHA-256 only, named, last use recorded, listed and revoked by
command; a revoked token gets 401."""

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiToken, User

URL = "/api/v1/builds"


def command(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def bearer(token: str) -> APIClient:
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client


@pytest.fixture
def tokens(user) -> dict[str, str]:
    """Clear tokens of ``user``: ``jenkins`` and ``laptop``; and one of bob, also ``laptop``."""
    bob = User.objects.create_user(username="bob")
    return {
        "jenkins": ApiToken.issue(user, "jenkins")[1],
        "laptop": ApiToken.issue(user, "laptop")[1],
        "bob": ApiToken.issue(bob, "laptop")[1],
    }


def test_only_the_sha256_of_a_token_is_stored(tokens):
    row = ApiToken.objects.get(name="jenkins")
    assert row.token_hash == hashlib.sha256(tokens["jenkins"].encode()).hexdigest()
    stored = list(ApiToken.objects.values_list("token_hash", "name"))
    assert all(tokens["jenkins"] not in value for pair in stored for value in pair)


def test_listing_shows_name_and_last_use_but_never_the_token(tokens):
    bearer(tokens["jenkins"]).get(URL)
    out = command("listapitokens")
    lines = {line.split("\t")[2] + "/" + line.split("\t")[1]: line for line in out.splitlines()}
    assert set(lines) == {"name/user", "jenkins/alice", "laptop/alice", "laptop/bob"}
    assert lines["laptop/alice"].split("\t")[4] == "never"
    assert lines["jenkins/alice"].split("\t")[4] != "never"
    assert all(token not in out for token in tokens.values())


def test_listing_one_users_tokens(tokens):
    out = command("listapitokens", "--user", "bob")
    assert [line.split("\t")[1] for line in out.splitlines()[1:]] == ["bob"]


def test_revoking_by_name_and_user_makes_the_token_answer_401(tokens):
    assert bearer(tokens["laptop"]).get(URL).status_code == 200
    out = command("revokeapitoken", "--name", "laptop", "--user", "alice")
    assert "Revoked token" in out and "alice" in out
    response = bearer(tokens["laptop"]).get(URL)
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert bearer(tokens["bob"]).get(URL).status_code == 200
    assert bearer(tokens["jenkins"]).get(URL).status_code == 200


def test_revoking_by_id_and_by_the_token_itself(tokens):
    command("revokeapitoken", "--id", str(ApiToken.objects.get(name="jenkins").pk))
    command("revokeapitoken", "--token", tokens["bob"])
    assert bearer(tokens["jenkins"]).get(URL).status_code == 401
    assert bearer(tokens["bob"]).get(URL).status_code == 401
    assert bearer(tokens["laptop"]).get(URL).status_code == 200


def test_an_ambiguous_name_revokes_nothing_unless_all_is_given(tokens):
    with pytest.raises(CommandError, match="2 active tokens match"):
        command("revokeapitoken", "--name", "laptop")
    assert ApiToken.objects.active().count() == 3
    command("revokeapitoken", "--name", "laptop", "--all")
    assert list(ApiToken.objects.active().values_list("name", flat=True)) == ["jenkins"]


def test_revoked_tokens_are_listed_only_on_request(tokens):
    command("revokeapitoken", "--name", "jenkins")
    assert "jenkins" not in command("listapitokens")
    assert "jenkins" in command("listapitokens", "--revoked")


@pytest.mark.parametrize(
    ("args", "words"),
    [((), "--id, --name or --token"), (("--name", "nope"), "No active API token")],
)
def test_revoking_without_a_match_is_an_error(tokens, args, words):
    with pytest.raises(CommandError, match=words):
        command("revokeapitoken", *args)


def test_a_token_revoked_twice_keeps_its_first_revocation(tokens):
    command("revokeapitoken", "--name", "jenkins")
    first = ApiToken.objects.get(name="jenkins").revoked
    with pytest.raises(CommandError, match="No active API token"):
        command("revokeapitoken", "--name", "jenkins")
    assert ApiToken.objects.get(name="jenkins").revoked == first
