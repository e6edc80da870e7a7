"""The API token page: create (shown once), list, and revoke only one's own tokens."""

import pytest
from django.urls import reverse

from accounts import tokens
from accounts.models import ApiToken, User

pytestmark = pytest.mark.django_db


def test_a_new_token_is_shown_once_and_works_for_the_api(signed_in, user):
    response = signed_in.post(reverse("token-list"), {"name": "jenkins"}, follow=True)
    html = response.content.decode()
    row = ApiToken.objects.get(user=user, name="jenkins")
    clear = html.split('id="new-token-value"')[1].split('value="')[1].split('"')[0]
    assert ApiToken.find_active(clear) == row
    again = signed_in.get(reverse("token-list")).content.decode()
    assert clear not in again and "jenkins" in again


def test_a_token_needs_a_name(signed_in):
    response = signed_in.post(reverse("token-list"), {"name": ""})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_revoking_ones_own_token_refuses_it_from_then_on(signed_in, user):
    row, clear = ApiToken.issue(user, name="old")
    response = signed_in.post(reverse("token-revoke", args=[row.id]), follow=True)
    assert "Token revoked" in response.content.decode()
    assert ApiToken.find_active(clear) is None


def test_nobody_can_revoke_another_users_token(signed_in):
    bob = User.objects.create_user(username="bob", password="x")
    row, clear = ApiToken.issue(bob, name="bobs")
    response = signed_in.post(reverse("token-revoke", args=[row.id]), follow=True)
    assert "No such active token" in response.content.decode()
    assert ApiToken.find_active(clear) == row
    assert "bobs" not in signed_in.get(reverse("token-list")).content.decode()


def test_revoking_twice_keeps_the_first_time(user):
    row, _ = ApiToken.issue(user)
    assert tokens.revoke_token(user, row.id) is True
    first = ApiToken.objects.get(pk=row.pk).revoked
    assert tokens.revoke_token(user, row.id) is False
    assert ApiToken.objects.get(pk=row.pk).revoked == first


def test_revoke_takes_a_post(signed_in, user):
    row, _ = ApiToken.issue(user)
    assert signed_in.get(reverse("token-revoke", args=[row.id])).status_code == 405
