"""Fixtures for Conduit tests: a caller that posts form-encoded calls as Conduit clients do,
and builds/targets created directly in the states a test needs."""

import json
from urllib.parse import urlencode

import pytest
from django.test import Client

from tests.api.conftest import make_build, make_target  # noqa: F401  (shared builders)
from tests.conftest import make_plan


class Conduit:
    """Calls ``/api/<method>`` with the ``params`` JSON encoding (``__conduit__.token``),
    or with plain form fields (``api.token``) via ``form``."""

    def __init__(self, client: Client, token: str | None):
        self.client = client
        self.token = token

    def __call__(self, method: str, **params) -> dict:
        if self.token is not None:
            params["__conduit__"] = {"token": self.token}
        return self.raw(method, {"params": json.dumps(params), "output": "json"})

    def form(self, method: str, fields: dict) -> dict:
        if self.token is not None:
            fields = {"api.token": self.token, **fields}
        return self.raw(method, fields)

    def raw(self, method: str, fields: dict, **extra) -> dict:
        return self.raw_bytes(method, urlencode(fields, doseq=True).encode(), **extra)

    def raw_bytes(self, method: str, body: bytes, **extra) -> dict:
        """Post ``body`` as it is, form-encoded; return the envelope."""
        response = self.client.post(
            f"/api/{method}", body, content_type="application/x-www-form-urlencoded", **extra
        )
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == "application/json"
        return response.json()


def ok(envelope: dict):
    """The result of a successful call (asserting it had no error)."""
    assert envelope["error_code"] is None, envelope
    assert envelope["error_info"] is None
    return envelope["result"]


def error(envelope: dict) -> tuple[str, str]:
    """``(error_code, error_info)`` of a failed call (asserting it failed)."""
    assert envelope["result"] is None, envelope
    assert envelope["error_code"] is not None, envelope
    return envelope["error_code"], envelope["error_info"]


@pytest.fixture
def conduit(api_token) -> Conduit:
    return Conduit(Client(), api_token)


@pytest.fixture
def anonymous(db) -> Conduit:
    return Conduit(Client(), None)


@pytest.fixture
def waiting_plan(db):
    return make_plan("external-ci", [{"key": "ci", "step_type": "http", "wait_for_message": True}])


@pytest.fixture
def build(waiting_plan, buildable, user):
    return make_build(waiting_plan, buildable, initiator=user)


@pytest.fixture
def waiting_target(build):
    return make_target(build)
