"""PostgreSQL restarting under Harbor: web and workers recover by themselves, senders get
JSON 503s with ``Retry-After`` (never an HTML page), and no accepted message is lost or
applied twice. The cluster is the test's own (``tests/outage/harbor_stack.py``)."""

import json
import threading
import time

import pytest
from celery import Celery
from django.conf import settings

from tests.outage.harbor_stack import eventually

pytestmark = pytest.mark.workers

PLAN = "wait-for-message"


def waiting_builds(stack, count: int) -> dict[int, str]:
    """Start ``count`` builds and return ``{build id: its waiting target's PHID}``."""
    ids = [stack.start_build(PLAN) for _ in range(count)]
    return {
        build_id: eventually(
            lambda b=build_id: stack.waiting_target(b), 60, f"build {build_id} never waited"
        )
        for build_id in ids
    }


def send_until_accepted(stack, receiver: str, key: str, answers: list) -> None:
    """POST a ``pass`` to ``receiver``, again with the same idempotency key after each 503
    (as the README tells senders to), recording every answer in ``answers``."""
    for _ in range(40):
        response = stack.api(
            "POST",
            "/api/v1/sendmessage",
            json={"receiver": receiver, "type": "pass", "idempotency_key": key},
        )
        answers.append(response)
        if response.status_code != 503:
            return
        time.sleep(min(float(response.headers.get("Retry-After", 1)), 1))


def all_passed(stack, build_ids) -> bool:
    return all(stack.build(b)["status"] == "passed" for b in build_ids)


def test_the_engine_recovers_by_itself_after_postgresql_restarts(stack, own_postgres):
    builds = waiting_builds(stack, 5)
    own_postgres.restart()
    # The periodic wait-timeout check is the worker's first task after the restart: its
    # query, outside a transaction, is the one that used to leave the connection broken.
    app = Celery(broker=settings.REDIS_URL, set_as_current=False)
    app.send_task("workers.tasks.expire_waits", queue=f"{stack.env['HARBOR_QUEUE_PREFIX']}.engine")
    app.close()
    time.sleep(1)
    answers = []
    for build_id, phid in builds.items():
        send_until_accepted(stack, phid, f"recover-{build_id}", answers)
    assert [a.status_code for a in answers if a.status_code != 503] == [202] * len(builds)
    eventually(lambda: all_passed(stack, builds), 30, "builds did not pass after the restart")


def test_a_restart_under_messages_answers_json_503s_and_applies_each_message_once(
    stack, own_postgres
):
    builds = waiting_builds(stack, 20)
    answers: list = []
    senders = [
        threading.Thread(target=send_until_accepted, args=(stack, phid, f"once-{b}", answers))
        for b, phid in builds.items()
    ]
    for sender in senders:  # about 10 messages a second, the restart in the middle
        sender.start()
        time.sleep(0.1)
        if sender is senders[5]:
            threading.Thread(target=own_postgres.restart).start()
    for sender in senders:
        sender.join()
    assert any(a.status_code == 503 for a in answers), "no message met the restart"
    for answer in answers:
        assert answer.status_code in (200, 202, 503), (answer.status_code, answer.text[:200])
        assert answer.headers["Content-Type"] == "application/json", answer.text[:200]
        if answer.status_code == 503:
            assert answer.json()["error"] == "unavailable"
            assert int(answer.headers["Retry-After"]) > 0
    eventually(lambda: all_passed(stack, builds), 30, "builds did not pass after the restart")
    pass_counts = own_postgres.psql(
        "SELECT count(*) FROM builds_buildmessage WHERE type = 'pass'"
        f" AND build_id IN ({','.join(map(str, builds))}) GROUP BY target_id"
    ).split()
    assert pass_counts == ["1"] * len(builds)


def test_while_postgresql_is_down_every_write_answers_a_json_503(stack, own_postgres):
    ((build_id, phid),) = waiting_builds(stack, 1).items()
    message = {"receiver": phid, "type": "pass", "idempotency_key": "down-1"}
    conduit_call = {"receiver": phid, "type": "pass", "__conduit__": {"token": stack.token}}
    conduit_params = {"params": json.dumps(conduit_call)}
    own_postgres.stop()
    try:
        answers = {
            "sendmessage": stack.api("POST", "/api/v1/sendmessage", json=message),
            "builds": stack.api("POST", "/api/v1/builds", json={"plan": PLAN}),
            "junit": stack.api(
                "POST",
                f"/api/v1/junit?receiver={phid}&type=auto",
                data=b"<testsuite/>",
                headers={"Content-Type": "application/xml"},
            ),
            "conduit": stack.api("POST", "/api/harbormaster.sendmessage", data=conduit_params),
            "healthz": stack.api("GET", "/healthz"),
        }
    finally:
        own_postgres.start()
    for name, answer in answers.items():
        assert answer.status_code == 503, (name, answer.status_code, answer.text[:200])
        assert answer.headers["Content-Type"] == "application/json", (name, answer.text[:200])
    for name in ("sendmessage", "builds", "junit"):
        assert answers[name].json()["error"] == "unavailable", name
        assert int(answers[name].headers["Retry-After"]) > 0, name
    assert answers["conduit"].json()["error_code"] == "ERR-UNAVAILABLE"
    assert int(answers["conduit"].headers["Retry-After"]) > 0
    retried = []
    send_until_accepted(stack, phid, "down-1", retried)
    assert retried[-1].status_code == 202, retried[-1].text
    eventually(lambda: all_passed(stack, [build_id]), 30, "the build did not pass")


def test_a_step_running_through_a_restart_runs_once_and_its_result_counts(stack, own_postgres):
    build_id = stack.start_build("sleep-step")
    eventually(
        lambda: [t["status"] for t in stack.build(build_id)["targets"]] == ["building"],
        30,
        "the step never started",
    )
    time.sleep(1)
    own_postgres.restart()  # under the running step: its lease keeper and its finish
    eventually(lambda: all_passed(stack, [build_id]), 30, "the build did not pass")
    claims = own_postgres.psql(
        "SELECT count(*) FROM builds_statusevent e JOIN builds_buildtarget t"
        f" ON t.id = e.target_id WHERE t.build_id = {build_id} AND e.to_status = 'building'"
    )
    attempt = own_postgres.psql(
        f"SELECT attempt FROM builds_buildtarget WHERE build_id = {build_id}"
    )
    assert (claims, attempt) == ("1", "1"), "the step was claimed again and ran twice"
