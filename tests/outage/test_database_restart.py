"""PostgreSQL restarting under Harbor: web and workers recover by themselves, senders get
JSON 503s with ``Retry-After`` (never an HTML page), and no accepted message is lost or
applied twice. The cluster is the test's own (``tests/outage/harbor_stack.py``)."""

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
