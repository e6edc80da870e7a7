"""Plan import reads ``triggers`` and refuses, naming the trigger, one that names a forge
not in HARBOR_FORGES, an unknown event, or is otherwise malformed; nothing is written."""

from pathlib import Path

import pytest

from builds.models import BuildPlan
from builds.plans import PlanError, import_plan, load_plan_file

pytestmark = pytest.mark.django_db

STEPS = [{"key": "s", "type": "sleep"}]


def plan(*triggers) -> dict:
    return {"name": "widgets-ci", "triggers": list(triggers), "steps": STEPS}


def test_it_stores_the_plans_triggers_with_every_field_set():
    stored = import_plan(
        plan(
            {"forge": "github", "repository": "acme/widgets", "events": ["push", "pull_request"]},
            {
                "forge": "gitlab",
                "repository": "acme/platform/widgets",
                "events": ["tag", "push"],
                "branches": ["main", "release/*"],
                "tags": ["v*"],
            },
        )
    )
    assert BuildPlan.objects.get(pk=stored.pk).triggers == [
        {
            "forge": "github",
            "repository": "acme/widgets",
            "events": ["push", "pull_request"],
            "branches": None,
            "tags": None,
        },
        {
            "forge": "gitlab",
            "repository": "acme/platform/widgets",
            "events": ["tag", "push"],
            "branches": ["main", "release/*"],
            "tags": ["v*"],
        },
    ]


def test_reimporting_without_triggers_removes_them():
    import_plan(plan({"forge": "github", "repository": "acme/widgets", "events": ["push"]}))
    import_plan({"name": "widgets-ci", "steps": STEPS})
    assert BuildPlan.objects.get(name="widgets-ci").triggers == []


@pytest.mark.parametrize(
    "trigger, complaint",
    [
        (
            {"forge": "gitub", "repository": "acme/widgets", "events": ["push"]},
            "triggers[0] (gitub acme/widgets): unknown forge 'gitub' "
            "(configured forges: gitea, github, gitlab)",
        ),
        (
            {"forge": "github", "repository": "acme/widgets", "events": ["commit"]},
            "triggers[0] (github acme/widgets): unknown event 'commit' "
            "(known: push, pull_request, tag)",
        ),
        (
            {"forge": "github", "repository": "acme/widgets"},
            "triggers[0] (github acme/widgets): events must be a non-empty list",
        ),
        (
            {"forge": "github", "repository": "widgets", "events": ["push"]},
            "triggers[0] (github widgets): repository 'widgets' must be the forge's path",
        ),
        (
            {"forge": "github", "repository": "acme//widgets", "events": ["push"]},
            "repository 'acme//widgets' must be the forge's path",
        ),
        (
            {"forge": "github", "repository": "acme/widgets", "events": ["push"], "branch": "x"},
            "unknown field(s) branch; known: forge, repository, events, branches, tags",
        ),
        (
            {"forge": "github", "repository": "acme/w", "events": ["push"], "branches": "main"},
            "branches must be a non-empty list of globs",
        ),
        (
            {"forge": "github", "repository": "acme/w", "events": ["push"], "tags": ["v*"]},
            "tags filters only tag events, not these",
        ),
        ("github", "triggers[0]: a trigger must be a mapping"),
    ],
)
def test_it_refuses_a_malformed_trigger_naming_it_and_writes_nothing(trigger, complaint):
    with pytest.raises(PlanError) as refused:
        import_plan(plan(trigger))
    assert any(complaint in problem for problem in refused.value.problems), refused.value
    assert not BuildPlan.objects.exists()


def test_it_refuses_triggers_that_are_not_a_list():
    with pytest.raises(PlanError, match="triggers must be a list"):
        import_plan({"name": "widgets-ci", "triggers": {"forge": "github"}, "steps": STEPS})


def test_without_any_forge_configured_a_trigger_is_refused_saying_so(settings):
    settings.HARBOR_FORGES = {}
    with pytest.raises(PlanError, match=r"configured forges: none; set HARBOR_FORGES"):
        import_plan(plan({"forge": "github", "repository": "acme/widgets", "events": ["push"]}))


def test_the_example_forge_plan_imports_with_a_github_forge_configured(settings):
    settings.HARBOR_CREDENTIALS = {"chat-hook": {"type": "bearer", "token": "s"}}
    example = Path(__file__).parents[2] / "examples" / "forge-plans" / "widgets-ci.yaml"
    stored = import_plan(load_plan_file(example))
    assert [trigger["events"] for trigger in stored.triggers] == [
        ["push"],
        ["pull_request"],
        ["tag"],
    ]
    assert [hook["secret"] for hook in stored.notify] == ["chat-hook"]


def test_the_demo_plans_import_with_no_forge_configured(settings):
    settings.HARBOR_FORGES = {}
    for path in sorted((Path(__file__).parents[2] / "examples" / "plans").glob("*.yaml")):
        import_plan(load_plan_file(path))
