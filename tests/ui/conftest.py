"""Rows for UI tests, created directly in given states (tests may; code may not)."""

import pytest

from builds.models import (
    Build,
    BuildLog,
    BuildLogChunk,
    BuildMessage,
    BuildTarget,
    LintMessage,
    StatusEvent,
    UnitResult,
)
from builds.templatetags.harbor_ui import status_badge
from tests.conftest import make_plan


def badge(status: str) -> str:
    """The badge HTML a page shows for ``status`` (its format is tested in
    ``test_templatetags``)."""
    return str(status_badge(status))


@pytest.fixture
def signed_in(client, user):
    """The test client, signed in as ``user``."""
    client.force_login(user)
    return client


def plan_of(step_count: int, name: str = "ci"):
    """A plan of ``step_count`` steps ``step-0`` … each depending on the one before."""
    steps = [
        {"key": f"step-{i}", "depends_on": [f"step-{i - 1}"] if i else []}
        for i in range(step_count)
    ]
    return make_plan(name, steps)


def make_build(plan, buildable, status: str = "building", **fields) -> Build:
    """A build of ``plan`` in ``status``, generation 1, with the plan's snapshot."""
    fields = {"generation": 1, "plan_snapshot": plan.snapshot(), **fields}
    return Build.objects.create(plan=plan, buildable=buildable, status=status, **fields)


def make_target(build: Build, key: str, status: str = "building", **fields) -> BuildTarget:
    """A target of ``build``'s current generation for the step ``key``."""
    fields = {"generation": build.generation, "name": f"Run {key}", "step_type": "sleep", **fields}
    return BuildTarget.objects.create(build=build, step_key=key, status=status, **fields)


def report(target: BuildTarget, author=None, log_text: str = "hello from the step\n") -> None:
    """Give ``target`` a message, two unit results (one failing), a lint message, a log of
    two chunks and a status event, as a running step and its outside system would."""
    message = BuildMessage.objects.create(
        receiver_phid=target.phid, target=target, build=target.build, type="work", author=author
    )
    UnitResult.objects.create(target=target, message=message, name="test_ok", result="pass")
    UnitResult.objects.create(
        target=target, message=message, name="test_broken", result="fail", details="boom"
    )
    LintMessage.objects.create(
        target=target, path="src/app.py", line=3, code="E1", severity="error", name="Bad"
    )
    log = BuildLog.objects.create(target=target, source="http", log_type="body")
    half = len(log_text) // 2
    BuildLogChunk.objects.create(log=log, text=log_text[:half])
    BuildLogChunk.objects.create(log=log, text=log_text[half:])
    StatusEvent.objects.create(
        target=target, from_status="pending", to_status=target.status, cause="worker"
    )
