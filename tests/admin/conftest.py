"""One row of each engine-owned model, made the way Harbor makes them."""

import pytest
from django.db.models import Model

from builds import engine, logs
from builds.artifacts import create_artifact
from builds.models import (
    Artifact,
    Build,
    Buildable,
    BuildLog,
    BuildLogChunk,
    BuildMessage,
    BuildTarget,
    LintMessage,
    StatusEvent,
    UnitResult,
)
from tests.conftest import make_plan

ENGINE_OWNED = (
    Buildable,
    Build,
    BuildTarget,
    BuildMessage,
    StatusEvent,
    UnitResult,
    LintMessage,
    BuildLog,
    BuildLogChunk,
    Artifact,
)


@pytest.fixture
def engine_rows(buildable, user) -> dict[type[Model], Model]:
    """A passed build of a one-step plan whose step waited for a message, which came with
    a unit result and a lint message; its target made an artifact and a log. Maps each
    engine-owned model to one of its rows, as read back from the database."""
    plan = make_plan("admin-rows", [{"key": "ci", "wait_for_message": True}])
    build = engine.start_build(plan, buildable)
    engine.update_build(build.pk)
    target = build.targets.get()
    engine.finish_target(engine.begin_target(target.pk))
    unit = [{"name": "test_ok", "result": "pass"}]
    lint = [{"path": "app.py", "code": "E1", "severity": "error", "name": "Bad"}]
    engine.receive_message(target.phid, "pass", author=user, unit=unit, lint=lint)
    engine.update_build(build.pk)
    create_artifact(target, "report", "uri", {"uri": "https://ci.example.com/1"})
    logs.write(target, "http", "body", "hello from the step\n")
    return {model: model.objects.filter(**_of(model, build)).first() for model in ENGINE_OWNED}


def _of(model: type[Model], build: Build) -> dict:
    """The lookup that finds ``model``'s rows belonging to ``build``."""
    if model is Buildable:
        return {"builds": build}
    if model is Build:
        return {"pk": build.pk}
    if model is BuildLogChunk:
        return {"log__target__build": build}
    if model in (UnitResult, LintMessage, BuildLog):
        return {"target__build": build}
    return {"build": build}
