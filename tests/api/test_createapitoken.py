"""``manage.py createapitoken USERNAME``: a new token, printed last, that authenticates."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiToken, User


def create_token(*args: str) -> str:
    out = StringIO()
    call_command("createapitoken", *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_it_creates_the_user_and_prints_a_token_that_authenticates(db):
    token = create_token("ci-bot", "--name", "jenkins")

    user = User.objects.get(username="ci-bot")
    assert not user.has_usable_password()
    assert ApiToken.find_active(token).name == "jenkins"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/builds/999999").status_code == 404  # authenticated, no build


def test_it_reuses_an_existing_user(user):
    first, second = create_token("alice"), create_token("alice")
    assert first != second
    assert User.objects.count() == 1
    assert user.api_tokens.count() == 2
    assert user.check_password("alice-password")


def test_it_refuses_an_invalid_username(db):
    with pytest.raises(CommandError, match="Invalid username"):
        create_token("not a name!")
    assert not User.objects.exists()
