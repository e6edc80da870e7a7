"""The health check: no sign-in, and a 503 naming what is down."""

import time

import pytest
from django.urls import reverse

from builds import locks

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_redis_ok_without_signing_in(client):
    locks.client().delete(locks.engine_waiting_key())  # other tests' requests left it
    response = client.get(reverse("healthz"))
    assert reverse("healthz") == "/healthz"
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok", "engine": "ok"}


def test_healthz_answers_503_naming_redis_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"], body["redis"]) == ("error", "ok", "error")


def test_healthz_reports_the_engine_stalled_when_an_update_waits_with_no_pass_finishing(
    client, settings
):
    settings.HARBOR_ENGINE_STALL_AFTER = 60
    locks.client().delete(locks.engine_waiting_key())
    assert locks.claim_update_request(4242)  # an update is requested: the engine has work
    assert client.get(reverse("healthz")).json()["engine"] == "ok"
    locks.client().set(locks.engine_waiting_key(), time.time() - 61)  # …a minute ago
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["engine"] == "stalled"
    locks.run_exclusively(4242, run_pass=lambda build_id: None, schedule_update=print)
    assert client.get(reverse("healthz")).json() == {
        "status": "ok",
        "database": "ok",
        "redis": "ok",
        "engine": "ok",
    }


def test_a_repair_run_that_finds_no_work_left_behind_clears_an_old_waiting_mark(client, settings):
    from workers.tasks import repair_builds

    settings.HARBOR_ENGINE_STALL_AFTER = 60
    locks.client().set(locks.engine_waiting_key(), time.time() - 61)  # a lost, idle request
    repair_builds()
    assert client.get(reverse("healthz")).json()["engine"] == "ok"
