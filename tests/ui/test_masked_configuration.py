"""Secrets in a step's configuration never reach a page: authorization and cookie headers,
anything named like a token, secret, password or key, credentials in a URI, and the
target's callback secret."""

import json

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import User
from builds.secrets import MASK, target_secret
from tests.conduit.conftest import Conduit
from tests.conftest import make_plan
from tests.ui.conftest import make_build, make_target, plan_of

pytestmark = pytest.mark.django_db

SECRETS = {
    "bearer": "Bearer eyJhbGciOi-bearer-value",
    "proxy": "Basic cHJveHk6cGFzcw-proxy-value",
    "cookie": "sessionid=cookie-value-123",
    "api_key": "api-key-value-456",
    "deploy": "deploy-token-value-789",
    "uri_password": "uri-password-value",
    "uri_token": "uri-token-value",
    "env_secret": "env-secret-value",
}

CONFIG = {
    "uri": (
        f"https://ci:{SECRETS['uri_password']}@ci.example/run"
        f"?access_token={SECRETS['uri_token']}&commit=abc123"
    ),
    "method": "POST",
    "headers": {
        "Authorization": SECRETS["bearer"],
        "proxy-authorization": SECRETS["proxy"],
        "Cookie": SECRETS["cookie"],
        "X-Api-Key": SECRETS["api_key"],
        "X-Request-Id": "plain-request-id",
    },
    "body": {"deployToken": SECRETS["deploy"], "ref": "main"},
    "env": {"DATABASE_PASSWORD": SECRETS["env_secret"]},
}


def test_the_build_page_shows_no_secret_of_a_steps_configuration(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    make_target(build, "step-0", config=CONFIG, variables={"step.key": "step-0"})
    html = signed_in.get(build.get_absolute_url()).content.decode()
    leaked = [name for name, value in SECRETS.items() if value in html]
    assert leaked == []
    # What is not secret stays readable, and the masked rows say so.
    assert "plain-request-id" in html and "commit=abc123" in html and "main" in html
    assert MASK in html and "headers.Authorization" in html
    assert ">step-0</code>" in html  # the step.key variable is not a secret


def test_the_build_page_masks_the_targets_callback_secret_wherever_it_appears(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    target = make_target(build, "step-0")
    secret = target_secret(target.phid)
    config = {"uri": f"https://ci.example/run?s={secret}", "note": f"x{secret}y"}
    type(target).objects.filter(pk=target.pk).update(config=config)
    html = signed_in.get(build.get_absolute_url()).content.decode()
    assert secret not in html


@pytest.fixture
def secret_target(buildable):
    """A target (and its plan's step) whose configuration holds every kind of secret."""
    plan = make_plan("with-secrets", [{"key": "step-0", "step_type": "http", "config": CONFIG}])
    build = make_build(plan, buildable)
    return make_target(build, "step-0", config=CONFIG, variables={"step.key": "step-0"})


def assert_no_secret_in(text: str) -> None:
    assert [name for name, value in SECRETS.items() if value in text] == []


def test_the_rest_api_shows_no_secret_of_a_targets_configuration(api_token, secret_target):
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {api_token}")
    for url in (
        f"/api/v1/targets/{secret_target.pk}",
        f"/api/v1/builds/{secret_target.build_id}",
        "/api/v1/builds",
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert_no_secret_in(response.content.decode())


def test_conduit_searches_show_no_secret_of_a_targets_configuration(api_token, secret_target):
    conduit = Conduit(Client(), api_token)
    for method in (
        "harbormaster.target.search",
        "harbormaster.build.search",
        "harbormaster.buildplan.search",
        "harbormaster.querybuilds",
    ):
        envelope = conduit(method)
        assert envelope["error_code"] is None, envelope
        assert_no_secret_in(json.dumps(envelope))


@pytest.mark.parametrize("model", ["buildtarget", "buildstep", "build"])
def test_the_admin_shows_no_secret_of_a_configuration(client, secret_target, model):
    staff = User.objects.create_superuser(username="root", password="root-password")
    client.force_login(staff)
    obj = {
        "buildtarget": secret_target,
        "buildstep": secret_target.build.plan.steps.get(),
        "build": secret_target.build,
    }[model]
    response = client.get(reverse(f"admin:builds_{model}_change", args=[obj.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert_no_secret_in(html)
    assert MASK in html
