"""Forge webhook helpers: three configured forges, their payload fixtures (one file per
event and variant, ``<event>__<variant>.json``, the event header taken from the name), and
posting a fixture signed each forge's own way."""

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import Client

from builds.models import Build, Buildable, BuildPlan, StatusEvent
from builds.plans import import_plan
from forges.config import load_forges
from forges.models import Delivery, OutboundDelivery

FIXTURES = Path(__file__).parent / "fixtures"
SECRETS = {"github": "gh-hook-secret-4f1c", "gitlab": "gl-hook-secret-9a2e", "gitea": "gt-7d3b"}
TOKENS = {"github": "ghp_token_5e8a", "gitlab": "glpat-token-1b6f", "gitea": "gitea-token-2c9d"}
FORGES = {
    "github": {"type": "github", "token": TOKENS["github"], "webhook_secret": SECRETS["github"]},
    "gitlab": {
        "type": "gitlab",
        "url": "https://gitlab.example.com/api/v4",
        "token": TOKENS["gitlab"],
        "webhook_secret": SECRETS["gitlab"],
    },
    "gitea": {
        "type": "gitea",
        "url": "https://gitea.example.com/api/v1",
        "token": TOKENS["gitea"],
        "webhook_secret": SECRETS["gitea"],
    },
}
# Where each fixture's repository is, as a trigger names it.
REPOSITORIES = {
    "github": "acme/widgets",
    "gitlab": "acme/platform/widgets",
    "gitea": "acme/widgets",
}
# Every table a webhook could write to.
WATCHED_MODELS = (
    Delivery,
    Delivery.builds.through,
    Build,
    Buildable,
    StatusEvent,
    OutboundDelivery,
)


@pytest.fixture(autouse=True)
def forges(settings):
    settings.HARBOR_FORGES = load_forges(json.dumps(FORGES))


def fixture_body(forge: str, name: str) -> bytes:
    """The bytes of ``fixtures/<forge>/<name>.json``, as the forge would send them."""
    return (FIXTURES / forge / f"{name}.json").read_bytes()


def fixture_payload(forge: str, name: str) -> dict:
    return json.loads(fixture_body(forge, name))


def event_header(forge: str, name: str) -> str:
    """The event a fixture is of, from its file name: ``push__tag`` is GitHub's ``push``,
    ``merge_request_hook__open`` GitLab's ``Merge Request Hook``."""
    event = name.split("__")[0]
    return event.replace("_", " ").title() if forge == "gitlab" else event


def signed_headers(forge: str, event: str, body: bytes, delivery: str, secret: str = "") -> dict:
    """The headers (as Django's test client takes them) of ``forge``'s webhook."""
    secret = secret or SECRETS[forge]
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if forge == "github":
        return {
            "HTTP_X_GITHUB_EVENT": event,
            "HTTP_X_GITHUB_DELIVERY": delivery,
            "HTTP_X_HUB_SIGNATURE_256": f"sha256={digest}",
        }
    if forge == "gitea":
        return {
            "HTTP_X_GITEA_EVENT": event,
            "HTTP_X_GITEA_DELIVERY": delivery,
            "HTTP_X_GITEA_SIGNATURE": digest,
        }
    return {
        "HTTP_X_GITLAB_EVENT": event,
        "HTTP_X_GITLAB_EVENT_UUID": delivery,
        "HTTP_X_GITLAB_TOKEN": secret,
    }


def post_body(client: Client, forge: str, event: str, body: bytes, delivery: str = "", **headers):
    """POST ``body`` to ``/hooks/<forge>``, signed; ``headers`` override or add headers."""
    delivery = delivery or str(uuid.uuid4())
    meta = {**signed_headers(forge, event, body, delivery), **headers}
    meta = {key: value for key, value in meta.items() if value is not None}
    return client.post(f"/hooks/{forge}", body, content_type="application/json", **meta)


def post_fixture(client: Client, forge: str, name: str, delivery: str = "", **headers):
    """POST the fixture ``name`` of ``forge`` as that forge sends it."""
    body = fixture_body(forge, name)
    return post_body(client, forge, event_header(forge, name), body, delivery, **headers)


def make_triggered_plan(name: str, *triggers: dict) -> BuildPlan:
    """A one-step plan with ``triggers``, imported as a plan file would be."""
    return import_plan(
        {"name": name, "triggers": list(triggers), "steps": [{"key": "s", "type": "sleep"}]}
    )


def trigger(forge: str, **fields) -> dict:
    return {"forge": forge, "repository": REPOSITORIES[forge], "events": ["push"], **fields}


def table_counts() -> dict:
    return {model.__name__: model.objects.count() for model in WATCHED_MODELS}


@contextmanager
def assert_nothing_stored() -> Iterator[None]:
    """Assert the block leaves every table a webhook writes to as it was."""
    before = table_counts()
    yield
    assert table_counts() == before
