"""``manage.py importplan`` and ``builds.plans``: plans imported from YAML, or refused whole."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from builds.models import Build, BuildPlan, BuildStep
from builds.plans import PlanError, import_plan, load_plan_file

EXAMPLE_PLAN = Path(__file__).resolve().parents[2] / "examples" / "plans" / "external-ci.yaml"


def write_plan(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def plan_data(*steps: dict, name: str = "deploy") -> dict:
    return {"name": name, "steps": list(steps)}


def step(key: str, **fields) -> dict:
    return {"key": key, "type": "sleep", "seconds": 0, **fields}


def run_importplan(path: Path) -> str:
    out = StringIO()
    call_command("importplan", str(path), stdout=out)
    return out.getvalue()


@pytest.mark.django_db
class TestImportingAPlan:
    def test_it_imports_the_example_plan_and_reports_its_name_phid_and_step_count(self):
        output = run_importplan(EXAMPLE_PLAN)

        plan = BuildPlan.objects.get(name="external-ci")
        assert output.strip() == (
            f"Imported plan external-ci ({plan.phid}) with 2 steps, version 1"
        )
        assert plan.behaviors == {"restartable": "always", "affects_buildable": "always"}
        first, second = plan.steps.order_by("sequence")
        assert (first.key, first.step_type, first.wait_for_message) == ("external-ci", "http", True)
        assert first.config["method"] == "POST"
        assert first.config["uri"].startswith("http://127.0.0.1:9900/run?target=${target.phid}")
        assert (second.key, second.depends_on, second.wait_for_message) == (
            "notify",
            ["external-ci"],
            False,
        )

    def test_a_steps_options_go_into_its_config_and_its_own_fields_do_not(self):
        fail = {"key": "a", "type": "fail", "name": "Nap", "description": "rests", "message": "hi"}
        plan = import_plan(plan_data(fail))

        row = plan.steps.get()
        assert (row.name, row.description) == ("Nap", "rests")
        assert row.config == {"message": "hi"}

    def test_a_step_without_a_name_is_named_by_its_key(self):
        plan = import_plan(plan_data(step("lint")))

        assert plan.steps.get().name == "lint"

    def test_reimporting_replaces_the_steps_and_keeps_the_phid_of_a_kept_key(self):
        plan = import_plan(plan_data(step("a"), step("b", depends_on=["a"])))
        kept_phid = plan.steps.get(key="a").phid

        again = import_plan(plan_data(step("a", seconds=5), step("c"), name="deploy"))

        assert again.pk == plan.pk
        assert list(again.steps.order_by("sequence").values_list("key", flat=True)) == ["a", "c"]
        assert again.steps.get(key="a").phid == kept_phid
        assert again.steps.get(key="a").config == {"seconds": 5}

    def test_reimporting_leaves_an_existing_builds_plan_snapshot_unchanged(self, buildable):
        plan = import_plan(plan_data(step("a"), step("b", depends_on=["a"])))
        build = Build.objects.create(plan=plan, buildable=buildable, plan_snapshot=plan.snapshot())
        snapshot = build.plan_snapshot

        import_plan(plan_data(step("z", seconds=9)))

        build.refresh_from_db()
        assert build.plan_snapshot == snapshot
        assert [s["key"] for s in build.plan_snapshot] == ["a", "b"]
        assert list(plan.steps.values_list("key", flat=True)) == ["z"]


REFUSALS = {
    "cycle": (
        plan_data(
            step("a", depends_on=["c"]), step("b", depends_on=["a"]), step("c", depends_on=["b"])
        ),
        "cycle: a -> c -> b -> a",
    ),
    "self-dependency": (plan_data(step("a", depends_on=["a"])), "cycle: a -> a"),
    "missing dependency": (
        plan_data(step("a"), step("b", depends_on=["nope"])),
        "step 'b' depends on 'nope', which is not a step",
    ),
    "unknown type": (
        plan_data(step("a"), step("b", type="teleport")),
        "step 'b': unknown step type 'teleport'",
    ),
    "duplicate key": (plan_data(step("a"), step("a")), "step 'a' appears more than once"),
    "bad key": (plan_data(step("Build Me")), "key 'Build Me' must match [a-z0-9._-]+"),
    "no name": ({"steps": [step("a")]}, "the plan has no name"),
    "no steps": ({"name": "deploy"}, "has no steps list"),
    "bad behavior value": (
        {**plan_data(step("a")), "behaviors": {"restartable": "sometimes"}},
        "behavior 'restartable' is 'sometimes'",
    ),
    "unknown behavior": (
        {**plan_data(step("a")), "behaviors": {"hold-drafts": "always"}},
        "unknown behavior 'hold-drafts'",
    ),
    "wait on a step that never waits": (
        plan_data(step("a", type="fail", wait_for_message=True)),
        "step 'a': a fail step cannot wait for a message",
    ),
    "non-boolean wait": (
        plan_data(step("a", wait_for_message="yes")),
        "step 'a': wait_for_message",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_a_refused_plan_names_the_problem_and_writes_nothing(case):
    data, expected = REFUSALS[case]

    with pytest.raises(PlanError) as refused:
        import_plan(data)

    assert expected in str(refused.value)
    assert not BuildPlan.objects.exists()
    assert not BuildStep.objects.exists()


@pytest.mark.django_db
def test_a_refused_reimport_leaves_the_existing_plan_as_it_was():
    plan = import_plan({**plan_data(step("a"), step("b")), "description": "first"})

    with pytest.raises(PlanError):
        import_plan({**plan_data(step("a"), step("b", depends_on=["b"])), "description": "second"})

    plan.refresh_from_db()
    assert plan.description == "first"
    assert list(plan.steps.order_by("sequence").values_list("key", "depends_on")) == [
        ("a", []),
        ("b", []),
    ]


@pytest.mark.django_db
class TestTheCommandRefusing:
    def test_a_cycle_is_a_command_error_naming_the_cycle(self, tmp_path):
        path = write_plan(
            tmp_path,
            "name: loop\nsteps:\n"
            "  - {key: a, type: sleep, depends_on: [b]}\n"
            "  - {key: b, type: sleep, depends_on: [a]}\n",
        )

        with pytest.raises(CommandError, match="cycle: a -> b -> a"):
            run_importplan(path)
        assert not BuildPlan.objects.exists()

    def test_invalid_yaml_is_a_command_error(self, tmp_path):
        path = write_plan(tmp_path, "name: [unclosed\nsteps: -")

        with pytest.raises(CommandError, match="invalid YAML"):
            run_importplan(path)
        assert not BuildPlan.objects.exists()

    def test_a_missing_file_is_a_command_error(self, tmp_path):
        with pytest.raises(CommandError, match="cannot read"):
            run_importplan(tmp_path / "absent.yaml")


def test_load_plan_file_refuses_a_file_that_is_not_a_mapping(tmp_path):
    with pytest.raises(PlanError, match="mapping"):
        load_plan_file(write_plan(tmp_path, "- just\n- a list\n"))


@pytest.mark.parametrize(
    ("step", "complaint"),
    [
        ({"wait_timeout": 10}, "needs wait_for_message"),
        ({"wait_for_message": True, "wait_timeout": 0}, "above 0"),
        ({"wait_for_message": True, "wait_timeout": "1h"}, "above 0"),
        ({"wait_for_message": True, "wait_timeout": 10**12}, "at most"),
        ({"wait_for_message": True, "wait_timeout": float("inf")}, "at most"),
        ({"wait_for_message": True, "wait_timeout": float("nan")}, "at most"),
        ({"wait_for_message": True, "wait_timeout": 5, "on_timeout": "maybe"}, "fail or pass"),
        ({"wait_for_message": True, "on_timeout": "pass"}, "needs a wait_timeout"),
        ({"on_abort": "http://x"}, "mapping with a url"),
        ({"on_abort": {"url": "ftp://x"}}, "http://"),
        ({"on_abort": {"url": "http://x", "method": "BREW"}}, "method"),
        ({"retry": 3}, "retry must be a mapping with a limit"),
        ({"retry": {"on": ["failed"]}}, "retry must be a mapping with a limit"),
        ({"retry": {"limit": 11}}, r"retry.limit must be a whole number from 1 to 10, not 11"),
        ({"retry": {"limit": 0}}, r"retry.limit must be a whole number from 1 to 10, not 0"),
        ({"retry": {"limit": True}}, r"retry.limit must be a whole number"),
        ({"retry": {"limit": 2, "on": ["flaky"]}}, r"retry.on must list one or more of"),
        ({"retry": {"limit": 2, "on": []}}, r"retry.on must list one or more of"),
        ({"retry": {"limit": 2, "when": "always"}}, r"unknown retry field\(s\): when"),
        ({"retyr": {"limit": 2}}, r"unknown option 'retyr' \(did you mean 'retry'\?\)"),
    ],
)
@pytest.mark.django_db
def test_it_refuses_bad_lifecycle_settings_and_writes_nothing(step, complaint):
    data = {"name": "lifecycle", "steps": [{"key": "ci", "type": "sleep", **step}]}
    with pytest.raises(PlanError, match=complaint):
        import_plan(data)
    assert not BuildPlan.objects.filter(name="lifecycle").exists()


@pytest.mark.django_db
def test_it_accepts_lifecycle_settings_and_a_run_group():
    step = {
        "key": "ci",
        "type": "sleep",
        "wait_for_message": True,
        "wait_timeout": 30,
        "on_timeout": "pass",
        "on_abort": {"url": "http://127.0.0.1:9/cancel"},
    }
    plan = import_plan({"name": "lifecycle", "run_group": "releasers", "steps": [step]})
    assert plan.run_group.name == "releasers"
    assert plan.steps.get().config["on_timeout"] == "pass"


@pytest.mark.django_db
def test_a_retry_without_on_retries_every_kind_of_failure():
    step = {"key": "ci", "type": "sleep", "retry": {"limit": 2}}
    plan = import_plan({"name": "retrying", "steps": [step]})
    assert plan.steps.get().config["retry"] == {"limit": 2, "on": ["failed", "lost", "timeout"]}


TOO_LONG_OR_NUL = {
    "step key over 100": (plan_data(step("k" * 101)), "key"),
    "step name over 200": (plan_data(step("a", name="n" * 201)), "name"),
    "plan name over 200": (plan_data(step("a"), name="p" * 201), "name"),
    "run_group over 150": ({**plan_data(step("a")), "run_group": "g" * 151}, "run_group"),
    "NUL in the plan name": (plan_data(step("a"), name="de\x00ploy"), "NUL"),
    "NUL in a description": ({**plan_data(step("a")), "description": "a\x00b"}, "NUL"),
    "NUL in a step name": (plan_data(step("a", name="x\x00")), "NUL"),
    "NUL deep in config": (plan_data(step("a", extra={"list": ["ok", "b\x00d"]})), "NUL"),
    "NUL in a config key": (plan_data(step("a", extra={"k\x00": 1})), "NUL"),
    "NUL in run_group": ({**plan_data(step("a")), "run_group": "g\x00"}, "NUL"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", TOO_LONG_OR_NUL, ids=list(TOO_LONG_OR_NUL))
def test_a_value_the_database_cannot_store_is_a_plan_error(case):
    data, words = TOO_LONG_OR_NUL[case]
    with pytest.raises(PlanError, match=words):
        import_plan(data)
    assert not BuildPlan.objects.exists()


@pytest.mark.django_db
def test_the_longest_names_the_database_holds_are_accepted():
    data = {**plan_data(step("k" * 100, name="n" * 200), name="p" * 200), "run_group": "g" * 150}
    plan = import_plan(data)
    assert plan.steps.get().key == "k" * 100


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"type": "wait-for-previous-builds", "poll_seconds": 0}, "poll_seconds"),
        ({"type": "wait-for-previous-builds", "poll_seconds": 0.5}, "poll_seconds"),
        ({"type": "wait-for-previous-builds", "poll_seconds": "often"}, "poll_seconds"),
        ({"type": "wait-for-previous-builds", "poll_seconds": True}, "poll_seconds"),
        ({"type": "sleep", "seconds": -1}, "seconds"),
        ({"type": "sleep", "seconds": "a while"}, "seconds"),
        ({"type": "sleep", "seconds": float("nan")}, "seconds"),
        ({"type": "sleep", "seconds": None}, "seconds"),
    ],
)
@pytest.mark.django_db
def test_it_refuses_flow_and_sleep_timings_that_cannot_work(fields, complaint):
    with pytest.raises(PlanError, match=complaint):
        import_plan({"name": "timing", "steps": [{"key": "a", **fields}]})
    assert not BuildPlan.objects.exists()


@pytest.mark.django_db
def test_it_accepts_sensible_flow_and_sleep_timings():
    import_plan(
        {
            "name": "timing",
            "steps": [
                {"key": "a", "type": "wait-for-previous-builds", "poll_seconds": 1},
                {"key": "b", "type": "wait-for-previous-builds"},
                {"key": "c", "type": "sleep", "seconds": 2.5},
                {"key": "d", "type": "sleep"},
            ],
        }
    )
    assert BuildPlan.objects.get().steps.count() == 4


def http(key: str = "call", **fields) -> dict:
    return {"key": key, "type": "http", "uri": "http://127.0.0.1:9/run", **fields}


def refusal(data: dict) -> PlanError:
    """The PlanError ``import_plan(data)`` raises, after checking nothing was written."""
    with pytest.raises(PlanError) as refused:
        import_plan(data)
    assert not BuildPlan.objects.exists()
    assert not BuildStep.objects.exists()
    return refused.value


MISSPELLED = {
    "wait_for_mesage": (
        http(wait_for_mesage=True),
        "step 'call': unknown option 'wait_for_mesage' (did you mean 'wait_for_message'?)",
    ),
    "timout": (
        http(timout=30),
        "step 'call': unknown option 'timout' (did you mean 'timeout'?)",
    ),
    "url for uri": (
        {"key": "call", "type": "http", "url": "http://127.0.0.1:9/run"},
        "step 'call': unknown option 'url' (did you mean 'uri'?)",
    ),
    "an option of another step type": (
        {"key": "nap", "type": "sleep", "message": "hi"},
        "step 'nap': unknown option 'message'",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", MISSPELLED, ids=list(MISSPELLED))
def test_it_refuses_an_unknown_option_and_suggests_the_nearest_known_one(case):
    raw, expected = MISSPELLED[case]

    problems = refusal(plan_data(raw)).problems
    assert problems[0].startswith(expected)


@pytest.mark.django_db
def test_it_refuses_an_http_step_without_a_uri():
    problems = refusal(plan_data({"key": "call", "type": "http", "method": "GET"})).problems

    assert problems == ["step 'call': option 'uri' is required"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [
        {"uri": "http://127.0.0.1:9/run?target=${target.phidd}"},
        {"headers": {"X-Target": "${target.phidd}"}},
        {"body": {"targets": [{"phid": "${target.phidd}"}]}},
        {"body": "target=${target.phidd}"},
        {"on_abort": {"url": "http://127.0.0.1:9/stop?t=${target.phidd}"}},
    ],
    ids=["uri", "header", "nested body", "text body", "cancel hook"],
)
def test_it_refuses_an_unknown_variable_wherever_it_is(fields):
    problems = refusal(plan_data(http(**fields))).problems

    assert len(problems) == 1
    assert "step 'call'" in problems[0]
    assert "unknown variable ${target.phidd}" in problems[0]
    assert "did you mean ${target.phid}?" in problems[0]


@pytest.mark.django_db
def test_it_refuses_an_unknown_variable_in_a_command_steps_env():
    command = {"key": "tests", "type": "command", "command": "make", "env": {"X": "${buld.id}"}}

    problems = refusal(plan_data(command)).problems

    assert problems == [
        "step 'tests': option 'env': unknown variable ${buld.id} (did you mean ${build.id}?)"
    ]


@pytest.mark.django_db
def test_it_accepts_every_known_variable_and_any_build_parameter():
    uri = "http://127.0.0.1:9/run?" + "&".join(
        f"v{n}=${{{name}}}"
        for n, name in enumerate(
            [
                "build.id", "build.phid", "build.generation", "target.id", "target.phid",
                "target.secret", "step.key", "step.timestamp", "initiator.phid",
                "buildable.phid", "buildable.object.phid", "buildable.commit", "buildable.ref",
                "buildable.diff", "buildable.revision", "repository.uri", "build.param.region",
                "build.param.a/b-c.d",
            ]
        )
    )  # fmt: skip

    plan = import_plan(plan_data(http(uri=uri, body={"${build.param.key}": ["${build.id}"]})))

    assert plan.steps.get().config["uri"] == uri


WRONG_TYPES = {
    "http timeout as text": (http(timeout="soon"), "option 'timeout' must be a number above 0"),
    "http timeout of 0": (http(timeout=0), "option 'timeout' must be a number above 0"),
    "http headers as a list": (http(headers=["X-A: b"]), "option 'headers' must be a mapping"),
    "http max_redirects as text": (
        http(max_redirects="many"),
        "option 'max_redirects' must be a whole number of 0 or more",
    ),
    "http method unknown": (http(method="BREW"), "option 'method' must be one of GET, POST"),
    "http uri as a list": (http(uri=["http://a"]), "option 'uri' must be text"),
    "http body as a number": (http(body=3), "option 'body' must be text, a mapping or a list"),
    "fail message as a number": (
        {"key": "call", "type": "fail", "message": 3},
        "option 'message' must be text",
    ),
    "command env as a list": (
        {"key": "call", "type": "command", "command": "make", "env": ["A=b"]},
        "option 'env' must be a mapping",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", WRONG_TYPES, ids=list(WRONG_TYPES))
def test_it_refuses_an_option_of_the_wrong_type(case):
    raw, expected = WRONG_TYPES[case]

    problems = refusal(plan_data(raw)).problems

    assert len(problems) == 1
    assert problems[0].startswith("step 'call': ")
    assert expected in problems[0]


MANY_PROBLEMS = """\
name: broken
steps:
  - key: trigger
    type: http
    url: "http://127.0.0.1:9/run?target=${target.phidd}"
    timout: 30
  - key: notify
    type: http
    uri: "http://127.0.0.1:9/done?build=${build.idd}"
    wait_for_mesage: true
    depends_on: [trigger, nowhere]
  - key: nap
    type: sleep
    seconds: -1
"""


@pytest.mark.django_db
def test_it_reports_every_problem_of_the_file_at_once_with_its_step_and_option(tmp_path):
    path = write_plan(tmp_path, MANY_PROBLEMS)

    with pytest.raises(CommandError) as refused:
        run_importplan(path)

    message = str(refused.value)
    for problem in [
        "7 problems",
        "step 'trigger': unknown option 'url' (did you mean 'uri'?)",
        "step 'trigger': unknown option 'timout' (did you mean 'timeout'?)",
        "step 'trigger': option 'uri' is required",
        "step 'notify': option 'uri': unknown variable ${build.idd} (did you mean ${build.id}?)",
        "step 'notify': unknown option 'wait_for_mesage' (did you mean 'wait_for_message'?)",
        "step 'nap': option 'seconds' must be a number of seconds, at least 0",
        "step 'notify' depends on 'nowhere', which is not a step",
    ]:
        assert problem in message
    assert not BuildPlan.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", sorted(EXAMPLE_PLAN.parent.glob("*.yaml")), ids=lambda path: path.name
)
def test_every_example_plan_imports(path):
    assert run_importplan(path).startswith("Imported plan ")


@pytest.mark.django_db
def test_a_misspelt_plan_field_is_refused_with_the_nearest_known_one():
    with pytest.raises(PlanError) as refused:
        import_plan({**plan_data(step("a")), "decription": "typo", "trigers": []})
    assert "unknown plan field 'decription' (did you mean 'description'?)" in str(refused.value)
    assert "unknown plan field 'trigers' (did you mean 'triggers'?)" in str(refused.value)
    assert not BuildPlan.objects.exists()


@pytest.mark.django_db
def test_the_deploy_example_plan_imports_with_its_retried_step_and_approval():
    path = Path(__file__).resolve().parents[2] / "examples" / "plans" / "deploy-with-approval.yaml"
    plan = import_plan(load_plan_file(path))
    retry = plan.steps.get(key="integration-tests").config["retry"]
    assert retry == {"limit": 3, "on": ["failed", "timeout", "lost"]}
    approve = plan.steps.get(key="approve")
    assert (approve.step_type, approve.wait_for_message) == ("approval", True)
    assert approve.config["approvers"] == "release-managers"
