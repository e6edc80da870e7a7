"""Fixtures for permission tests: the REST API's clients and targets, plus a plan that only
members of one group may run, and users inside and outside that group."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from builds.models import BuildPlan, BuildTarget
from tests.api.conftest import (  # noqa: F401  (fixtures)
    anonymous_client,
    client,
    make_build,
    make_target,
    waiting_plan,
    waiting_target,
)
from tests.conftest import make_plan


def client_for(user: User) -> APIClient:
    """A REST client with a new bearer token of ``user``."""
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(user)[1]}")
    return api_client


@pytest.fixture
def releasers(db) -> Group:
    return Group.objects.create(name="releasers")


@pytest.fixture
def member(releasers) -> User:
    member = User.objects.create_user(username="rita")
    member.groups.add(releasers)
    return member


@pytest.fixture
def outsider(db) -> User:
    return User.objects.create_user(username="mallory")


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user(username="sam", is_staff=True)


@pytest.fixture
def release_plan(releasers) -> BuildPlan:
    return make_plan(
        "release",
        [{"key": "ci", "step_type": "http", "wait_for_message": True}],
        run_group=releasers,
    )


@pytest.fixture
def release_target(release_plan, buildable) -> BuildTarget:
    """A waiting target of a building build of the group-restricted plan."""
    return make_target(make_build(release_plan, buildable))
