"""A build's deliveries in the REST API and on its page: listed with their attempts and
last answer, and sent again ("Redeliver") as a copy, by users who may run the plan."""

# ruff: noqa: F811  (the fixtures imported from the other test modules)
import json

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from forges import outbox
from forges.models import OutboundDelivery
from tests.engine.conftest import waiting_step
from tests.forges.test_notifications import (  # noqa: F401  (fixtures)
    SECRET,
    Receiver,
    credentials,
    deliver_pending,
    notified_build,
    receiver,
)
from tests.forges.test_statuses import SHA, fake, forge_build, forges  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token}")
    return client


@pytest.fixture
def failed_notification(buildable, receiver) -> OutboundDelivery:
    """A build.started notification the receiver refused for good (410)."""
    receiver.answers = [(410, {})]
    notified_build(buildable, receiver, events=["build.started"])  # the start's pass: started
    deliver_pending()
    return OutboundDelivery.objects.get()


def counts() -> int:
    return OutboundDelivery.objects.count()


def test_the_api_lists_a_builds_statuses_and_notifications(api, fake, httpserver):
    fake.answers = [(500, {})]
    driver = forge_build("github", [waiting_step("ci")])
    url = httpserver.url_for("/hook?token=hidden")
    webhook = {"url": url, "events": ["target.waiting"], "secret": "hook"}
    driver.build.plan.__class__.objects.filter(pk=driver.build.plan_id).update(notify=[webhook])
    deliver_pending()  # the first status: 500
    driver.run("ci")  # a newer status, and the notification of the target waiting
    deliver_pending()
    response = api.get(f"/api/v1/builds/{driver.build.pk}/deliveries")
    assert response.status_code == 200
    rows = response.json()["deliveries"]
    kinds = [(r["kind"], r["event"], r["state"]) for r in rows]
    assert kinds == [
        ("status", "", "pending"),
        ("status", "", "pending"),
        ("notification", "target.waiting", ""),
    ]
    first, _, notification = rows
    assert first["destination"] == f"github: acme/widgets@{SHA[:12]}"
    assert (first["attempts"], first["last_status_code"]) == (1, 500)
    assert "Fake error 500" in first["response_excerpt"] and first["last_attempt_at"]
    assert first["outcome"] == "overtaken"
    assert notification["destination"] == httpserver.url_for("/").rstrip("/")
    assert (notification["outcome"], notification["last_status_code"]) == ("delivered", 201)
    assert "hidden" not in response.content.decode()


def test_the_list_of_an_unknown_build_is_404(api):
    assert api.get("/api/v1/builds/999999/deliveries").status_code == 404


def test_redeliver_sends_a_copy_with_the_same_delivery_id(api, failed_notification, receiver):
    response = api.post(f"/api/v1/deliveries/{failed_notification.pk}/redeliver", {}, format="json")
    assert response.status_code == 202
    copy = OutboundDelivery.objects.get(pk=response.json()["id"])
    assert response.json()["redelivery_of"] == failed_notification.pk
    assert (copy.uuid, copy.payload) == (failed_notification.uuid, failed_notification.payload)
    outbox.deliver(copy.pk)
    copy.refresh_from_db()
    assert copy.outcome == "delivered"
    first, second = receiver.calls
    assert first["headers"]["X-Harbor-Delivery"] == second["headers"]["X-Harbor-Delivery"]
    assert first["body"] == second["body"]


def test_redeliver_refuses_a_delivery_still_pending(api, buildable, receiver):
    notified_build(buildable, receiver, events=["build.started"])
    row = OutboundDelivery.objects.get()
    response = api.post(f"/api/v1/deliveries/{row.pk}/redeliver", {}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert "still being delivered" in response.json()["detail"]
    assert counts() == 1


def test_redeliver_refuses_a_status_a_newer_one_replaced(api, fake):
    driver = forge_build("github", [waiting_step("ci")])
    driver.update()
    driver.run("ci")
    deliver_pending()
    oldest = OutboundDelivery.objects.order_by("pk").first()
    newest = OutboundDelivery.objects.latest("pk")
    before = counts()
    response = api.post(f"/api/v1/deliveries/{oldest.pk}/redeliver", {}, format="json")
    assert response.status_code == 409
    assert f"Redeliver delivery {newest.pk} instead" in response.json()["detail"]
    assert counts() == before
    assert api.post(f"/api/v1/deliveries/{newest.pk}/redeliver").status_code == 202


def test_redeliver_refuses_unknown_fields(api, failed_notification):
    response = api.post(
        f"/api/v1/deliveries/{failed_notification.pk}/redeliver", {"force": True}, format="json"
    )
    assert response.status_code == 400
    assert counts() == 1


def test_redeliver_needs_the_right_to_run_the_plan(api, failed_notification):
    plan = failed_notification.build.plan
    plan.run_group = Group.objects.create(name="release")
    plan.save()
    response = api.post(f"/api/v1/deliveries/{failed_notification.pk}/redeliver")
    assert response.status_code == 403
    assert counts() == 1


def test_redeliver_of_an_unknown_delivery_is_404(api):
    assert api.post("/api/v1/deliveries/999999/redeliver").status_code == 404


def test_the_build_page_offers_redeliver_and_sends_it(user, failed_notification):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get(f"/builds/{failed_notification.build_id}/").content.decode()
    assert "Notification to" in page and "build.started" in page and "410" in page
    assert f'action="/deliveries/{failed_notification.pk}/redeliver"' in page
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    url = f"/deliveries/{failed_notification.pk}/redeliver"
    assert client.post(url).status_code == 403  # no CSRF token
    assert counts() == 1
    response = client.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == f"/builds/{failed_notification.build_id}/"
    assert OutboundDelivery.objects.filter(redelivery_of=failed_notification).count() == 1


def test_the_build_page_offers_no_redeliver_to_who_may_not_run_the_plan(failed_notification):
    plan = failed_notification.build.plan
    plan.run_group = Group.objects.create(name="release")
    plan.save()
    bob = User.objects.create_user(username="bob", password="bob-password")
    client = Client()
    client.force_login(bob)
    page = client.get(f"/builds/{failed_notification.build_id}/").content.decode()
    assert "build.started" in page and "Redeliver" not in page
    assert client.post(f"/deliveries/{failed_notification.pk}/redeliver").status_code == 403
    assert counts() == 1


def test_a_pending_delivery_has_no_redeliver_button(user, buildable, receiver):
    driver = notified_build(buildable, receiver, events=["build.started"])
    driver.update()
    client = Client()
    client.force_login(user)
    page = client.get(f"/builds/{driver.build.pk}/").content.decode()
    assert "build.started" in page and "Redeliver" not in page
    assert json.loads(json.dumps(SECRET)) not in page
