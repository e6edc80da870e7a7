"""A step that fails in a way it did not foresee: one line to the target's log and the build
page, the traceback to the worker's logger only."""

import logging

import pytest
from django.urls import reverse
from django.utils.html import escape

from builds.models import BuildTarget, StatusEvent
from tests.steps.conftest import make_target
from workers.tasks import run_target

pytestmark = pytest.mark.django_db


def run_in_process(target: BuildTarget) -> BuildTarget:
    """Claim and run the target as a worker would, in this process."""
    BuildTarget.objects.filter(pk=target.pk).update(status="pending", attempt=0)
    run_target(target.pk)
    target.refresh_from_db()
    return target


def test_an_http_step_without_a_uri_fails_with_one_line_and_no_traceback(buildable, caplog):
    # Written straight to the database, as plan import would now refuse it.
    target = make_target("http", {"method": "GET"}, buildable)

    with caplog.at_level(logging.ERROR, logger="workers.runner"):
        target = run_in_process(target)

    assert target.status == "failed"
    logged = [log.text for log in target.logs.all()]
    assert logged == ["The step failed unexpectedly: KeyError: 'uri'"]
    event = StatusEvent.objects.filter(target=target, to_status="failed").get()
    assert event.detail == "The step failed unexpectedly: KeyError: 'uri'"
    assert "Traceback" in caplog.text and "KeyError: 'uri'" in caplog.text


def test_the_build_page_shows_the_reason_and_no_traceback(buildable, client, user):
    target = run_in_process(make_target("http", {"method": "GET"}, buildable))
    client.force_login(user)

    html = client.get(reverse("build-detail", args=[target.build_id])).content.decode()

    assert escape("The step failed unexpectedly: KeyError: 'uri'") in html
    assert "Traceback" not in html and "File &quot;" not in html
