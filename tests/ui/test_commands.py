"""Command buttons: shown only to users allowed and only when the command can apply; a
confirmation page; the POST makes one engine call and reports a refusal."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from builds import engine
from builds.models import BuildMessage
from tests.ui.conftest import make_build, make_target, plan_of

pytestmark = pytest.mark.django_db


def command_url(build, command: str) -> str:
    return reverse("build-command", args=[build.id, command])


def page(client, build) -> str:
    return client.get(build.get_absolute_url()).content.decode()


def test_a_building_build_offers_restart_pause_and_abort_but_not_resume(signed_in, buildable):
    build = make_build(plan_of(1), buildable, status="building")
    html = page(signed_in, build)
    for command in ("restart", "pause", "abort"):
        assert f'href="{command_url(build, command)}"' in html
    assert command_url(build, "resume") not in html


def test_a_passed_build_of_a_plan_restartable_only_when_failed_offers_nothing(signed_in, buildable):
    plan = plan_of(1)
    plan.behaviors = {"restartable": "failed"}
    plan.save()
    html = page(signed_in, make_build(plan, buildable, status="passed"))
    assert 'class="commands"' not in html


def test_users_outside_the_plans_run_group_see_no_buttons_and_get_403(signed_in, buildable):
    plan = plan_of(1)
    plan.run_group = Group.objects.create(name="release-managers")
    plan.save()
    build = make_build(plan, buildable, status="building")
    assert 'class="commands"' not in page(signed_in, build)
    assert signed_in.get(command_url(build, "abort")).status_code == 403
    assert signed_in.post(command_url(build, "abort")).status_code == 403
    assert not BuildMessage.objects.exists()


def test_the_confirmation_page_says_what_the_command_does_and_posts_it(signed_in, buildable):
    build = make_build(plan_of(1), buildable, status="building")
    html = signed_in.get(command_url(build, "abort")).content.decode()
    assert f"Abort build {build.id}?" in html
    assert "aborted" in html and f'method="post" action="{command_url(build, "abort")}"' in html
    assert not BuildMessage.objects.exists()  # asking changes nothing


def test_confirming_sends_the_command_as_the_user_and_goes_back_to_the_build(
    signed_in, buildable, user
):
    build = make_build(plan_of(1), buildable, status="building")
    response = signed_in.post(command_url(build, "pause"), follow=True)
    assert response.redirect_chain[-1][0] == build.get_absolute_url()
    message = BuildMessage.objects.get()
    assert (message.type, message.author, message.build) == ("pause", user, build)
    html = response.content.decode()
    assert "Pause sent" in html and "pausing" in html


def test_a_refused_command_becomes_an_error_message_and_stores_nothing(signed_in, buildable):
    build = make_build(plan_of(1), buildable, status="passed")
    response = signed_in.post(command_url(build, "abort"), follow=True)
    html = response.content.decode()
    assert 'role="alert"' in html and "already complete" in html
    assert not BuildMessage.objects.exists()


def test_the_post_makes_exactly_one_engine_call(signed_in, buildable, monkeypatch):
    build = make_build(plan_of(1), buildable, status="building")
    calls = []
    real = engine.receive_message

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "receive_message", spy)
    signed_in.post(command_url(build, "restart"))
    assert len(calls) == 1
    assert calls[0][0] == (build.phid, "restart")


def test_an_unknown_command_is_404(signed_in, buildable):
    build = make_build(plan_of(1), buildable)
    assert signed_in.get(command_url(build, "explode")).status_code == 404


def test_while_a_command_waits_no_other_buttons_show(signed_in, buildable):
    build = make_build(plan_of(1), buildable, status="building")
    BuildMessage.objects.create(receiver_phid=build.phid, build=build, type="pause")
    html = page(signed_in, build)
    assert "pausing" in html and 'class="commands"' not in html


def rerun_url(build, step: str) -> str:
    return reverse("step-rerun", args=[build.id, step])


def test_a_complete_step_offers_a_rerun_and_a_running_one_does_not(signed_in, buildable):
    build = make_build(plan_of(2), buildable, status="building")
    make_target(build, "step-0", status="passed")
    make_target(build, "step-1", status="building")
    html = page(signed_in, build)
    assert f'href="{rerun_url(build, "step-0")}"' in html
    assert rerun_url(build, "step-1") not in html


def test_the_rerun_page_names_the_steps_that_run_again_and_posts_the_rerun(
    signed_in, buildable, user
):
    build = make_build(plan_of(3), buildable, status="failed")
    make_target(build, "step-0", status="passed")
    make_target(build, "step-1", status="failed")
    html = signed_in.get(rerun_url(build, "step-1")).content.decode()
    assert f"Rerun step step-1 of build {build.id}?" in html
    assert "run again as new attempts: step-1, step-2." in html
    assert not BuildMessage.objects.exists()
    response = signed_in.post(rerun_url(build, "step-1"))
    assert response.status_code == 302
    message = BuildMessage.objects.get()
    assert (message.type, message.step_key, message.author) == ("rerun", "step-1", user)


def test_the_rerun_page_says_why_a_running_step_cannot_rerun(signed_in, buildable):
    build = make_build(plan_of(1), buildable, status="building")
    make_target(build, "step-0", status="waiting")
    html = signed_in.get(rerun_url(build, "step-0")).content.decode()
    assert "it is still running" in html and "<form" not in html.split("confirm-title")[1]
    assert signed_in.get(rerun_url(build, "nope")).status_code == 404
