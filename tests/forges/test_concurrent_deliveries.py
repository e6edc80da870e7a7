"""Two copies of one delivery arriving at once (a forge retrying a slow answer, or two
Harbor web workers behind a balancer) start its builds once.

The interleaving is forced, not hoped for: the test holds the plan's row lock, so the first
copy stops, its delivery recorded but not committed, when its build's insert needs the
plan; the second copy then reaches its own delivery insert while the first is still open.
Only then is the lock released."""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from builds.models import Build, BuildPlan
from forges.models import Delivery
from tests.forges.conftest import make_triggered_plan, post_fixture, trigger

pytestmark = pytest.mark.django_db(transaction=True)


def backends_waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        # pg_stat_activity is read once per transaction unless its snapshot is cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never reached: {backends_waiting_on_locks()} waiting"
        time.sleep(0.02)


def post_in_thread(responses: list, delivery: str) -> threading.Thread:
    def post() -> None:
        try:
            responses.append(post_fixture(Client(), "github", "push__branch", delivery=delivery))
        finally:
            connections.close_all()

    thread = threading.Thread(target=post)
    thread.start()
    return thread


def test_the_same_delivery_posted_twice_at_once_starts_its_builds_once():
    plan = make_triggered_plan("unit", trigger("github"))
    responses: list = []
    with transaction.atomic():
        BuildPlan.objects.select_for_update().get(pk=plan.pk)
        first = post_in_thread(responses, "d-concurrent")
        wait_for(lambda: backends_waiting_on_locks() == 1)
        second = post_in_thread(responses, "d-concurrent")
        wait_for(lambda: backends_waiting_on_locks() == 2)
    first.join(30)
    second.join(30)
    assert sorted(response.status_code for response in responses) == [200, 202]
    builds = list(Build.objects.values_list("pk", flat=True))
    assert len(builds) == 1
    assert [response.json()["builds"] for response in responses] == [builds, builds]
    assert Delivery.objects.count() == 1
