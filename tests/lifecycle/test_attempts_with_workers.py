"""Retries and reruns end to end: real Celery workers run the attempts."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from builds import engine
from builds.models import Build, BuildTarget, StatusEvent
from tests.conftest import make_plan
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]


def counting_step(key: str, counter, passes_on: int, **fields) -> dict:
    """A command step that counts its runs in the file ``counter`` and fails until run
    ``passes_on``."""
    command = f"n=$(($(cat {counter} 2>/dev/null || echo 0) + 1)); echo $n > {counter}; "
    command += f'echo "run $n"; test $n -ge {passes_on}'
    config = {"command": command, **fields.pop("config", {})}
    return {"key": key, "step_type": "command", "config": config, **fields}


def settled(build: Build) -> Build:
    return wait_for(
        lambda: Build.objects.filter(pk=build.pk, status__in=Build.COMPLETE).first(),
        timeout=90,
        message=f"build {build.pk} never completed",
    )


def test_a_step_that_fails_twice_passes_on_its_third_attempt(celery_workers, buildable, tmp_path):
    retry = {"retry": {"limit": 2, "on": ["failed"]}}
    step = counting_step("flaky", tmp_path / "count", passes_on=3, config=retry)
    build = engine.start_build(make_plan("flaky-plan", [step]), buildable)
    assert settled(build).status == "passed"
    attempts = list(BuildTarget.objects.filter(build=build).order_by("step_attempt"))
    assert [(t.step_attempt, t.status) for t in attempts] == [
        (1, "failed"),
        (2, "failed"),
        (3, "passed"),
    ]
    assert [t.superseded_by for t in attempts] == ["retry", "retry", ""]
    for number, target in enumerate(attempts, start=1):
        output = target.logs.get(log_type="output").text
        assert f"run {number}\n" in output and f"run {number + 1}" not in output


def test_a_rerun_of_a_failed_middle_step_reruns_it_and_its_dependents_only(
    celery_workers, buildable, tmp_path
):
    steps = [
        counting_step("compile", tmp_path / "compile", passes_on=1),
        counting_step("test", tmp_path / "test", passes_on=2, depends_on=["compile"]),
        counting_step("package", tmp_path / "package", passes_on=1, depends_on=["test"]),
    ]
    build = engine.start_build(make_plan("rerun-plan", steps), buildable)
    assert settled(build).status == "failed"
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("rerunner"))
    response = client.post(
        f"/api/v1/builds/{build.pk}/commands", {"command": "rerun", "step": "test"}, format="json"
    )
    assert response.status_code == 202, response.json()
    # Until the pass applies the rerun the build is still "failed". The rerun's two steps
    # can run between two polls, so wait for what stays: the pass that reopens the build
    # marks the failed attempt superseded in the same transaction.
    wait_for(
        lambda: BuildTarget.objects.filter(build=build, superseded_by="rerun").exists(),
        timeout=30,
        message="the rerun was never applied",
    )
    assert settled(build).status == "passed"
    reopened = StatusEvent.objects.filter(
        build=build, target=None, from_status="failed", to_status="building"
    )
    assert reopened.exists()
    keys = ("compile", "test", "package")
    runs = {key: (tmp_path / key).read_text().strip() for key in keys}
    assert runs == {"compile": "1", "test": "2", "package": "1"}
    attempts = {
        key: list(
            BuildTarget.objects.filter(build=build, step_key=key)
            .order_by("step_attempt")
            .values_list("status", "superseded_by")
        )
        for key in keys
    }
    assert attempts == {
        "compile": [("passed", "")],
        "test": [("failed", "rerun"), ("passed", "")],
        "package": [("passed", "")],
    }
