"""Bearer tokens: who may call the API, and how often using a token writes to the database."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken

URL = "/api/v1/builds/999999"  # 404 once authenticated, 401 otherwise


def test_a_valid_token_authenticates(client):
    assert client.get(URL).status_code == 404


def test_a_revoked_token_is_refused(client, api_token):
    ApiToken.objects.filter(pk=ApiToken.find_active(api_token).pk).update(revoked=timezone.now())
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert "revoked" in response.json()["detail"]


def test_a_token_of_an_inactive_user_is_refused(client, user):
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert client.get(URL).status_code == 401


def test_a_missing_token_answers_401_not_authenticated(anonymous_client):
    response = anonymous_client.get(URL)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_first_use_records_last_used(client, api_token):
    client.get(URL)
    assert ApiToken.objects.get().last_used is not None


@pytest.mark.parametrize(("age", "rewritten"), [(30, False), (120, True)])
def test_last_used_is_written_at_most_once_a_minute(client, api_token, age, rewritten):
    long_ago = timezone.now() - timedelta(seconds=age)
    ApiToken.objects.update(last_used=long_ago)
    client.get(URL)
    assert (ApiToken.objects.get().last_used != long_ago) is rewritten
