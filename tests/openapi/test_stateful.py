"""Schemathesis, stateful: it follows the schema's OpenAPI links against a running Harbor
with real workers, so a build it starts gets its targets, and the next calls read that
build, message its first target, send it JUnit, read the target, its log and the message.
Every answer is held to the same checks as the stateless test.

The links are followed twice: once on a fixed path (start a build, read it, message its
first target), which must end with the message stored; and by the fuzzer's state machine,
which must start builds. Which paths the fuzzer takes is Hypothesis' choice (its draws
even depend on the modules imported before it), so only the fixed path may be asserted
to reach a target."""

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


def schema_operation(schema, operation_id: str):
    """(schemathesis operation, its raw OpenAPI object) of ``operation_id``."""
    for path, methods in schema.raw_schema["paths"].items():
        for method, raw in methods.items():
            if isinstance(raw, dict) and raw.get("operationId") == operation_id:
                return schema[path][method.upper()], raw
    raise KeyError(operation_id)


def resolved(expression: str, body):
    """The value a link's runtime expression (``$response.body#/targets/0/phid``) names in
    the response ``body``."""
    assert expression.startswith("$response.body#/"), expression
    value = body
    for part in expression.split("#/", 1)[1].split("/"):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def test_the_schemas_links_lead_from_starting_a_build_to_messaging_its_target(
    celery_workers, live_server, api_token, user
):
    make_plan(PLAN, [{"key": "ci", "step_type": "sleep", "wait_for_message": True}])
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    headers = {"Authorization": f"Bearer {api_token}"}

    def call(operation_id: str, **parts):
        case = schema_operation(schema, operation_id)[0].Case(**parts)
        response = case.call(base_url=live_server.url, headers=headers)
        case.validate_response(response, checks=CHECKS)
        return response

    def link(operation_id: str, status: str, name: str) -> dict:
        return schema_operation(schema, operation_id)[1]["responses"][status]["links"][name]

    started = call("builds_create", body={"plan": PLAN})
    assert started.status_code == 201, started.text
    read_it = link("builds_create", "201", "ReadTheBuild")
    build_id = resolved(read_it["parameters"]["id"], started.json())
    wait_for(lambda: BuildTarget.objects.filter(build_id=build_id, status="waiting").exists())
    read = call(read_it["operationId"], path_parameters={"id": build_id})
    assert read.status_code == 200, read.text
    message_it = link("builds_retrieve", "200", "MessageItsFirstTarget")
    body = {key: resolved(value, read.json()) for key, value in message_it["requestBody"].items()}
    sent = call(message_it["operationId"], body={**body, "type": "pass"})
    assert sent.status_code == 202, sent.text
    assert BuildMessage.objects.filter(target__build_id=build_id, type="pass").exists()


def test_the_fuzzers_calls_along_the_links_keep_to_the_schema(
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
