"""Retries and reruns end to end: real Celery workers run the attempts."""

import pytest

from builds import engine
from builds.models import Build, BuildTarget
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
