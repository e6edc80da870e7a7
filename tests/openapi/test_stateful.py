"""Schemathesis, stateful: it follows the schema's OpenAPI links against a running Harbor
with real workers, so a build it starts gets its targets, and the next calls read that
build, message its first target, send it JUnit, read the target, its log and the message.
Every answer is held to the same checks as the stateless test, and the run must have
started a build and had a message accepted by one of that build's targets."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode

from builds.models import Build, BuildMessage, BuildTarget
from tests.conftest import make_plan
from tests.openapi.checks import CHECKS
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]
PLAN = "external-ci"  # the plan the schema's examples name
STARTED = "POST /api/v1/builds"


def harbor_state_machine(base_url: str, token: str):
    """The schema's state machine, calling Harbor at ``base_url`` with ``token``."""
    schema = schemathesis.openapi.from_url(f"{base_url}/api/schema/?format=json")
    schema.config.update(base_url=base_url)
    # Valid requests only: the point here is the sequence, and the stateless test sends the
    # invalid ones. (An invalid case would also turn valid once the plan's name and the
    # token are put in below, and then count as invalid data accepted.)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE])

    class HarborStateMachine(schema.as_state_machine()):
        def before_call(self, case):
            # The fuzzer would not guess a plan's name; it builds the one plan there is.
            if case.operation.label == STARTED and isinstance(case.body, dict):
                case.body["plan"] = PLAN

        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def after_call(self, response, case):
            super().after_call(response, case)
            if case.operation.label == STARTED and response.status_code == 201:
                # As a CI trigger would, wait for the workers to make the build's targets
                # (its answer has none yet), so the links that follow can reach them.
                build_id = response.json()["id"]
                wait_for(lambda: BuildTarget.objects.filter(build_id=build_id).exists())

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)
            if 400 <= response.status_code < 500:
                assert set(response.json()) >= {"error", "detail"}, response.text[:500]

    return HarborStateMachine


def test_starting_a_build_then_messaging_its_target_keeps_to_the_schema(
    celery_workers, live_server, api_token, user
):
    make_plan(PLAN, [{"key": "ci", "step_type": "sleep", "wait_for_message": True}])
    machine = harbor_state_machine(live_server.url, api_token)
    machine.run(
        settings=settings(
            max_examples=60,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
    assert Build.objects.filter(initiator=user).exists(), "no build was started"
    messaged = BuildMessage.objects.filter(target__build__initiator=user)
    assert messaged.exists(), "no started build's target was messaged"
