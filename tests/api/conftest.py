"""Fixtures for the REST API tests: an authenticated client and a target waiting for a verdict.

Builds and targets are created directly in the states a test needs; only the engine moves
them in the code under test.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from builds.models import (
    Artifact,
    Build,
    Buildable,
    BuildMessage,
    BuildPlan,
    BuildTarget,
    LintMessage,
    StatusEvent,
    UnitResult,
)
from tests.conftest import make_plan

# Every table a message or a build request could write to.
WATCHED_MODELS = (
    BuildMessage,
    UnitResult,
    LintMessage,
    StatusEvent,
    Build,
    BuildTarget,
    Buildable,
    Artifact,
)


@pytest.fixture
def client(api_token: str) -> APIClient:
    """A REST client sending ``Authorization: Bearer <token>`` for ``user``."""
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token}")
    return api_client


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


@pytest.fixture
def waiting_plan(db) -> BuildPlan:
    return make_plan("external-ci", [{"key": "ci", "step_type": "http", "wait_for_message": True}])


def make_build(plan: BuildPlan, buildable: Buildable, **fields) -> Build:
    """A build of ``plan`` (building, generation 1 unless given) with its plan snapshot."""
    fields = {"status": Build.Status.BUILDING, "generation": 1, **fields}
    return Build.objects.create(
        plan=plan, buildable=buildable, plan_snapshot=plan.snapshot(), **fields
    )


def make_target(build: Build, step_key: str = "ci", **fields) -> BuildTarget:
    """A target of ``build``'s current generation that waits for a message, unless told."""
    fields = {
        "generation": build.generation,
        "status": "waiting",
        "wait_for_message": True,
        **fields,
    }
    return BuildTarget.objects.create(
        build=build, step_key=step_key, name=f"Run {step_key}", step_type="http", **fields
    )


@pytest.fixture
def waiting_target(waiting_plan: BuildPlan, buildable: Buildable, user: User) -> BuildTarget:
    build = make_build(waiting_plan, buildable, initiator=user)
    return make_target(build)


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in WATCHED_MODELS}


@contextmanager
def assert_nothing_stored() -> Iterator[None]:
    """Assert that the block leaves the row count of every watched table unchanged."""
    before = row_counts()
    yield
    assert row_counts() == before
