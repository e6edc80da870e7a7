"""Plan import: artifacts a step consumes make it depend on the step producing them."""

import pytest

from builds.models import BuildStep
from builds.plans import PlanError, import_plan

pytestmark = pytest.mark.django_db


def step(key: str, produces=(), consumes=(), **extra) -> dict:
    return {
        "key": key,
        "type": "sleep",
        "artifacts": {"produces": list(produces), "consumes": list(consumes)},
        **extra,
    }


def test_a_consumed_artifact_adds_a_dependency_on_its_producer():
    import_plan(
        {
            "name": "artifacts",
            "steps": [
                step("build", produces=["binary"]),
                step("docs", produces=["site"]),
                step("ship", consumes=["binary", "site"], depends_on=["build"]),
            ],
        }
    )
    ship = BuildStep.objects.get(key="ship")
    assert ship.depends_on == ["build", "docs"]
    assert ship.config["artifacts"] == {"produces": [], "consumes": ["binary", "site"]}


def test_a_consumed_artifact_no_step_produces_is_refused():
    plan = {"name": "a", "steps": [step("ship", consumes=["binary"])]}
    with pytest.raises(PlanError, match="consumes the artifact 'binary', which no step produces"):
        import_plan(plan)


def test_two_producers_of_one_artifact_are_refused():
    plan = {"name": "a", "steps": [step("a", produces=["x"]), step("b", produces=["x"])]}
    with pytest.raises(PlanError, match="both produce the artifact 'x'"):
        import_plan(plan)


def test_artifacts_that_make_a_cycle_are_refused():
    plan = {
        "name": "a",
        "steps": [
            step("a", produces=["x"], consumes=["y"]),
            step("b", produces=["y"], consumes=["x"]),
        ],
    }
    with pytest.raises(PlanError, match="cycle"):
        import_plan(plan)


@pytest.mark.parametrize(
    "artifacts",
    [["x"], {"makes": ["x"]}, {"produces": "x"}, {"produces": ["Bad Key"]}],
)
def test_a_malformed_artifacts_declaration_is_refused(artifacts):
    plan = {"name": "a", "steps": [{"key": "a", "type": "sleep", "artifacts": artifacts}]}
    with pytest.raises(PlanError, match="artifacts"):
        import_plan(plan)
