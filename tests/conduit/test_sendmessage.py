"""``harbormaster.sendmessage`` over Conduit: the engine call it shares with REST, and
Harbormaster's error texts (docs/harbormaster.md §2.2 and §9)."""

import json

import pytest

from builds import engine
from builds.models import BuildMessage, LintMessage, UnitResult
from tests.api.conftest import assert_nothing_stored
from tests.conduit.conftest import Conduit, error, make_target, ok

UNKNOWN = "PHID-HMBT-aaaaaaaaaaaaaaaaaaaa"


def test_pass_with_unit_and_lint_results_is_stored_and_returns_null(conduit, waiting_target):
    result = ok(
        conduit(
            "harbormaster.sendmessage",
            receiver=waiting_target.phid,
            type="pass",
            unit=[{"name": "test_a", "result": "pass", "duration": 0.5, "extra": "dropped"}],
            lint=[
                {
                    "name": "Long line",
                    "code": "E501",
                    "severity": "warning",
                    "path": "a.py",
                    "line": 3,
                }
            ],
        )
    )
    assert result is None
    message = BuildMessage.objects.get()
    assert (message.type, message.target_id, message.author.username) == (
        "pass",
        waiting_target.pk,
        "alice",
    )
    assert UnitResult.objects.get().duration == 0.5
    assert LintMessage.objects.get().line == 3


def test_a_pass_received_over_conduit_passes_the_build(conduit, waiting_target):
    ok(conduit("harbormaster.sendmessage", receiver=waiting_target.phid, type="pass"))
    engine.update_build(waiting_target.build_id)
    waiting_target.refresh_from_db()
    assert waiting_target.status == "passed"
    assert waiting_target.build.__class__.objects.get(pk=waiting_target.build_id).status == "passed"


def test_the_deprecated_build_target_phid_names_the_receiver(conduit, waiting_target):
    ok(conduit("harbormaster.sendmessage", buildTargetPHID=waiting_target.phid, type="work"))
    assert BuildMessage.objects.get().type == "work"


def test_receiver_and_build_target_phid_together_are_refused(conduit, waiting_target):
    with assert_nothing_stored():
        code, info = error(
            conduit(
                "harbormaster.sendmessage",
                receiver=waiting_target.phid,
                buildTargetPHID=waiting_target.phid,
                type="pass",
            )
        )
    assert code == "ERR-CONDUIT-CORE"
    assert info.startswith('Call specifies both "receiver" and "buildTargetPHID".')


@pytest.mark.parametrize(
    ("params", "info"),
    [
        (
            {"type": "pass"},
            'Call omits required "receiver" parameter. Specify the PHID of the '
            "object you want to send a message to.",
        ),
        (
            {"receiver": UNKNOWN},
            'Call omits required "type" parameter. Specify the type of message you want to send.',
        ),
        (
            {"receiver": UNKNOWN, "type": ""},
            'Call omits required "type" parameter. Specify the type of message you want to send.',
        ),
        (
            {"receiver": UNKNOWN, "type": "pass"},
            f'Unable to load object "{UNKNOWN}" to receive message.',
        ),
        (
            {"receiver": "nonsense", "type": "pass"},
            'Unable to load object "nonsense" to receive message.',
        ),
    ],
)
def test_missing_or_unknown_receiver_and_type_use_harbormasters_texts(conduit, params, info):
    with assert_nothing_stored():
        assert error(conduit("harbormaster.sendmessage", **params)) == ("ERR-CONDUIT-CORE", info)


def test_null_parameters_count_as_absent(conduit, waiting_target):
    ok(
        conduit(
            "harbormaster.sendmessage",
            receiver=waiting_target.phid,
            type="pass",
            unit=None,
            buildTargetPHID=None,
        )
    )
    assert BuildMessage.objects.count() == 1


def test_a_unit_item_missing_result_is_a_call_error(conduit, waiting_target):
    with assert_nothing_stored():
        envelope = conduit(
            "harbormaster.sendmessage",
            receiver=waiting_target.phid,
            type="pass",
            unit=[{"name": "t"}],
        )
    assert error(envelope) == ("ERR-CONDUIT-CALL", "Missing required parameters: result")


def test_a_lint_item_missing_code_is_a_call_error(conduit, waiting_target):
    lint = [{"name": "n", "severity": "error", "path": "p"}]
    envelope = conduit(
        "harbormaster.sendmessage", receiver=waiting_target.phid, type="pass", lint=lint
    )
    assert error(envelope) == ("ERR-CONDUIT-CALL", "Missing required parameters: code")


def test_a_string_duration_has_harbormasters_type_error(conduit, waiting_target):
    envelope = conduit(
        "harbormaster.sendmessage",
        receiver=waiting_target.phid,
        type="pass",
        unit=[{"name": "t", "result": "pass", "duration": "fast"}],
    )
    assert error(envelope) == (
        "ERR-CONDUIT-CORE",
        "Parameter 'duration' has invalid type. Expected type 'optional float|int', "
        "got type 'string'.",
    )


def test_unit_that_is_not_a_list_of_maps_is_refused_in_the_envelope(conduit, waiting_target):
    for unit in ("x", ["x"]):
        code, info = error(
            conduit(
                "harbormaster.sendmessage", receiver=waiting_target.phid, type="pass", unit=unit
            )
        )
        assert code == "ERR-CONDUIT-CORE"
        assert info.startswith("Parameter 'unit' has invalid type.")


def test_an_undocumented_unit_result_is_refused_by_the_rest_serializer(conduit, waiting_target):
    with assert_nothing_stored():
        code, info = error(
            conduit(
                "harbormaster.sendmessage",
                receiver=waiting_target.phid,
                type="pass",
                unit=[{"name": "t", "result": "bogus"}],
            )
        )
    assert code == "ERR-CONDUIT-CORE"
    assert "'bogus' is not a valid unit result" in info


def test_unit_sent_to_a_build_uses_harbormasters_text(conduit, build):
    envelope = conduit("harbormaster.sendmessage", receiver=build.phid, type="abort", unit=[])
    assert error(envelope) == (
        "ERR-CONDUIT-CORE",
        'Call includes "unit" parameter. This parameter must be omitted when the receiver is '
        "not a Build Target.",
    )


def test_a_verdict_to_a_passed_target_is_refused_with_the_engines_explanation(conduit, build):
    target = make_target(build, status="passed")
    with assert_nothing_stored():
        code, info = error(conduit("harbormaster.sendmessage", receiver=target.phid, type="fail"))
    assert code == "ERR-CONDUIT-CORE"
    assert "already passed" in info


def test_pass_to_a_build_is_not_supported(conduit, build):
    code, info = error(conduit("harbormaster.sendmessage", receiver=build.phid, type="pass"))
    assert code == "ERR-CONDUIT-CORE"
    assert 'Message type "pass"' in info


def test_a_command_to_a_build_through_its_buildables_monogram(conduit, build):
    ok(conduit("harbormaster.sendmessage", receiver=f"B{build.buildable_id}", type="pause"))
    assert BuildMessage.objects.get().build_id == build.pk


def test_plain_form_encoding_sends_strings_and_php_style_arrays(conduit, waiting_target):
    fields = {
        "receiver": waiting_target.phid,
        "type": "work",
        "unit[0][name]": "t",
        "unit[0][result]": "skip",
    }
    ok(conduit.form("harbormaster.sendmessage", fields))
    assert UnitResult.objects.get().result == "skip"


def test_plain_form_durations_are_strings_and_fail_the_type_check(conduit, waiting_target):
    fields = {
        "receiver": waiting_target.phid,
        "type": "work",
        "unit[0][name]": "t",
        "unit[0][result]": "pass",
        "unit[0][duration]": "1",
    }
    code, info = error(conduit.form("harbormaster.sendmessage", fields))
    assert code == "ERR-CONDUIT-CORE"
    assert "got type 'string'" in info


def test_someone_outside_the_plans_run_group_is_refused(conduit, waiting_target):
    from django.contrib.auth.models import Group

    plan = waiting_target.build.plan
    plan.run_group = Group.objects.create(name="releasers")
    plan.save()
    with assert_nothing_stored():
        code, info = error(
            conduit("harbormaster.sendmessage", receiver=waiting_target.phid, type="pass")
        )
    assert code == "ERR-CONDUIT-CORE"
    assert "releasers" in info


def test_a_duration_too_large_to_be_finite_is_a_core_error(conduit, waiting_target):
    params = json.dumps(
        {
            "receiver": waiting_target.phid,
            "type": "pass",
            "unit": [{"name": "t", "result": "pass", "duration": 0.5}],
            "__conduit__": {"token": conduit.token},
        }
    ).replace('"duration": 0.5', '"duration": 1e400')
    with assert_nothing_stored():
        envelope = conduit.raw("harbormaster.sendmessage", {"params": params, "output": "json"})
    code, info = error(envelope)
    assert code == "ERR-CONDUIT-CORE"
    assert "duration" in info and "finite" in info


def decide(conduit, target, verdict: str) -> None:
    """Send ``verdict`` over Conduit and run the engine pass that settles ``target`` by it."""
    ok(conduit("harbormaster.sendmessage", receiver=target.phid, type=verdict))
    engine.update_build(target.build_id)
    target.refresh_from_db()
    assert target.status == {"pass": "passed", "fail": "failed"}[verdict]


@pytest.mark.parametrize("verdict", ["pass", "fail"])
def test_a_repeat_of_the_verdict_that_decided_the_target_succeeds_storing_nothing(
    conduit, waiting_target, verdict
):
    decide(conduit, waiting_target, verdict)
    with assert_nothing_stored():
        result = ok(conduit("harbormaster.sendmessage", receiver=waiting_target.phid, type=verdict))
    assert result is None
    assert BuildMessage.objects.filter(target=waiting_target).count() == 1


def test_a_repeat_sent_as_plain_form_fields_also_succeeds(conduit, waiting_target):
    decide(conduit, waiting_target, "pass")
    fields = {"receiver": waiting_target.phid, "type": "pass"}
    with assert_nothing_stored():
        assert ok(conduit.form("harbormaster.sendmessage", fields)) is None


def test_the_other_verdict_after_the_deciding_one_is_still_refused(conduit, waiting_target):
    decide(conduit, waiting_target, "pass")
    with assert_nothing_stored():
        code, info = error(
            conduit("harbormaster.sendmessage", receiver=waiting_target.phid, type="fail")
        )
    assert code == "ERR-CONDUIT-CORE"
    assert "already passed" in info


def test_the_deciding_verdict_repeated_by_another_sender_is_still_refused(conduit, waiting_target):
    from accounts.models import ApiToken, User

    decide(conduit, waiting_target, "pass")
    bob = User.objects.create_user(username="bob")
    bobs_conduit = Conduit(conduit.client, ApiToken.issue(bob, name="ci")[1])
    with assert_nothing_stored():
        code, info = error(
            bobs_conduit("harbormaster.sendmessage", receiver=waiting_target.phid, type="pass")
        )
    assert code == "ERR-CONDUIT-CORE"
    assert "already passed" in info


def test_a_work_message_to_a_decided_target_is_still_refused(conduit, waiting_target):
    decide(conduit, waiting_target, "pass")
    with assert_nothing_stored():
        code, info = error(
            conduit("harbormaster.sendmessage", receiver=waiting_target.phid, type="work")
        )
    assert code == "ERR-CONDUIT-CORE"
    assert "already passed" in info


def test_a_coverage_number_too_large_to_be_finite_is_a_core_error(conduit, waiting_target):
    params = json.dumps(
        {
            "receiver": waiting_target.phid,
            "type": "work",
            "unit": [{"name": "t", "result": "pass", "coverage": {"ratio": 0.5}}],
            "__conduit__": {"token": conduit.token},
        }
    ).replace('"ratio": 0.5', '"ratio": 1e999')
    with assert_nothing_stored():
        envelope = conduit.raw("harbormaster.sendmessage", {"params": params, "output": "json"})
    code, info = error(envelope)
    assert code == "ERR-CONDUIT-CORE"
    assert "coverage" in info and "finite" in info
