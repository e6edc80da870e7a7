"""Signing in: every page but the health check needs it."""

import pytest
from django.urls import reverse

from builds.models import BuildLog, UnitResult
from builds.test_history import key_of
from tests.ui.conftest import make_build, make_target, plan_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def page_urls(buildable) -> list[str]:
    plan = plan_of(1)
    build = make_build(plan, buildable)
    target = make_target(build, "step-0")
    log = BuildLog.objects.create(target=target, source="s", log_type="o")
    UnitResult.objects.create(target=target, name="t", result="pass")
    return [
        reverse("build-list"),
        reverse("build-detail", args=[build.id]),
        reverse("buildable-detail", args=[buildable.id]),
        reverse("plan-list"),
        reverse("plan-detail", args=[plan.id]),
        reverse("log-detail", args=[log.id]),
        reverse("plan-test", args=[plan.id, key_of("", "t")]),
    ]


def test_anonymous_users_are_redirected_to_sign_in_from_every_page(client, page_urls):
    for url in page_urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url == f"{reverse('login')}?next={url}"


def test_an_htmx_poll_from_a_signed_out_browser_is_told_to_load_the_sign_in_page(client, page_urls):
    build_url = page_urls[1]
    response = client.get(
        build_url + "?partial=1",
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{build_url}"},
    )
    assert response.status_code == 401
    assert response["HX-Redirect"] == f"{reverse('login')}?next={build_url}"


def test_the_sign_in_page_signs_a_user_in_and_goes_to_the_build_list(client, user):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password"})
    assert response.status_code == 302
    assert response.url == reverse("build-list")
    assert client.get(reverse("build-list")).status_code == 200


def test_a_wrong_password_is_refused_with_a_message(client, user):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert b"did not match" in response.content


def test_signing_out_takes_a_post_and_ends_the_session(signed_in):
    response = signed_in.post(reverse("logout"))
    assert response.status_code == 302
    assert signed_in.get(reverse("build-list")).status_code == 302


def test_the_nav_offers_admin_only_to_staff(signed_in, user):
    assert b">Admin<" not in signed_in.get(reverse("build-list")).content
    user.is_staff = True
    user.save()
    assert b">Admin<" in signed_in.get(reverse("build-list")).content
