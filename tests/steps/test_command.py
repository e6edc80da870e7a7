"""The ``command`` step: real shell commands, real git clones, real JUnit files."""

import os
import threading
import time

import pytest

from builds.models import Artifact, Buildable, BuildLog, UnitResult
from builds.plans import PlanError, import_plan
from tests.steps.conftest import git, log_text, make_target, run_step
from tests.workers import wait_for
from workers.steps import StepAborted, StepContext, StepFailed, StepTimedOut
from workers.steps.command import environment_name

pytestmark = pytest.mark.django_db

JUNIT = """<?xml version="1.0"?>
<testsuite name="suite" tests="4">
  <testcase classname="shop.TestCart" name="test_add" time="0.25"/>
  <testcase classname="shop.TestCart" name="test_remove" time="1,000.5">
    <failure message="expected 1">assert 2 == 1</failure>
  </testcase>
  <testcase classname="shop.TestCart" name="test_boom"><error message="KeyError"/></testcase>
  <testcase classname="shop.TestCart" name="test_later"><skipped/></testcase>
</testsuite>
"""


def test_a_command_that_exits_zero_passes_and_its_output_is_logged(buildable):
    target = make_target("command", {"command": "echo hello; echo oops >&2"}, buildable)
    run_step(target)
    text = log_text(target, "output")
    assert "hello\noops\n" in text
    assert "exited with status 0" in text
    assert not BuildLog.objects.get(target=target, log_type="output").is_live


def test_a_command_that_exits_non_zero_fails_with_its_status(buildable):
    target = make_target("command", {"command": "exit 3"}, buildable)
    with pytest.raises(StepFailed, match="exited with status 3"):
        run_step(target)


def test_variables_arrive_as_environment_variables_and_are_never_run_by_the_shell(
    buildable, tmp_path
):
    marker = tmp_path / "pwned"
    target = make_target(
        "command",
        {"command": 'printf "%s|%s" "$HARBOR_BUILD_PARAM_NOTE" "$HARBOR_BUILD_ID"'},
        buildable,
        parameters={"note": f"$(touch {marker}); `touch {marker}`"},
    )
    run_step(target)
    assert f"$(touch {marker}); `touch {marker}`|{target.build_id}" in log_text(target, "output")
    assert not marker.exists()


def test_a_variable_written_into_the_command_text_is_refused(buildable):
    target = make_target("command", {"command": "echo ${build.id}"}, buildable)
    with pytest.raises(StepFailed, match="HARBOR_BUILD_ID"):
        run_step(target)


def test_the_command_does_not_see_the_workers_secrets(buildable, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/harbor")
    target = make_target("command", {"command": "env"}, buildable)
    run_step(target)
    text = log_text(target, "output")
    assert "secret" not in text
    assert "HARBOR_TARGET_PHID=" + target.phid in text


def test_env_values_take_variables_as_plain_text(buildable):
    config = {"command": 'echo "[$GREETING]"', "env": {"GREETING": "hi ${buildable.ref}; ls"}}
    target = make_target("command", config, buildable)
    run_step(target)
    assert "[hi main; ls]" in log_text(target, "output")


def test_environment_names_follow_variable_names():
    assert environment_name("build.param.my-flag/x") == "HARBOR_BUILD_PARAM_MY_FLAG_X"


def test_each_run_gets_a_fresh_working_directory_that_is_removed_afterwards(buildable):
    first = make_target("command", {"command": "pwd; ls -A; touch left-over"}, buildable)
    run_step(first)
    second = make_target("command", {"command": "pwd; ls -A"}, buildable)
    run_step(second)
    first_dir = log_text(first, "output").splitlines()[1]
    second_lines = log_text(second, "output").splitlines()
    assert second_lines[1] != first_dir
    assert "left-over" not in second_lines
    assert not os.path.exists(first_dir)


def test_a_command_past_its_time_limit_is_stopped_and_fails(buildable):
    target = make_target("command", {"command": "sleep 30", "timeout": 0.5}, buildable)
    began = time.monotonic()
    with pytest.raises(StepTimedOut, match="time limit of 0.5 s"):  # retry.on: timeout
        run_step(target)
    assert time.monotonic() - began < 10


def test_a_command_that_fails_on_its_own_is_no_timeout(buildable):
    target = make_target("command", {"command": "exit 3", "timeout": 30}, buildable)
    with pytest.raises(StepFailed) as failed:
        run_step(target)
    assert not isinstance(failed.value, StepTimedOut)


def test_stopping_the_step_kills_the_whole_process_group(buildable, tmp_path):
    pid_file = tmp_path / "background.pid"
    command = f"sleep 60 & echo $! > {pid_file}; echo started; wait"
    target = make_target("command", {"command": command}, buildable)
    context = StepContext(target)
    threading.Timer(1.0, context.stop_event.set).start()
    with pytest.raises(StepAborted):
        run_step(target, context)
    background = int(pid_file.read_text())
    wait_for(lambda: not _alive(background), timeout=10, message="background sleep survived")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting for its reaper is gone too
        return stat.read().split()[2] != "Z"


@pytest.mark.django_db(transaction=True)
def test_output_streams_into_a_live_log_while_the_command_runs(buildable, tmp_path):
    gate = tmp_path / "gate"
    command = f"echo first line; while [ ! -e {gate} ]; do sleep 0.1; done; echo second line"
    target = make_target("command", {"command": command}, buildable)
    errors = []
    thread = threading.Thread(target=_run_collecting, args=(target, errors))
    thread.start()
    try:
        log = wait_for(
            lambda: BuildLog.objects.filter(target=target, log_type="output").first(), timeout=10
        )
        # "\nfirst line" is the output; the command's own echo line has no newline before it.
        wait_for(lambda: "\nfirst line" in log.text, timeout=10, message="no live output")
        log.refresh_from_db()
        assert log.is_live
        assert "\nsecond line" not in log.text
    finally:
        gate.touch()
        thread.join(30)
    assert not errors
    log.refresh_from_db()
    assert not log.is_live
    assert "\nsecond line\n" in log.text


def _run_collecting(target, errors):
    from django.db import connection

    try:
        run_step(target)
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        connection.close()


def test_clone_checks_out_the_buildables_commit(git_repo):
    first = git(git_repo, "rev-parse", "first")
    buildable = Buildable.objects.create(repository=f"file://{git_repo}", commit=first)
    target = make_target("command", {"command": "cat version.txt", "clone": True}, buildable)
    run_step(target)
    assert "\none\n" in log_text(target, "output")


def test_clone_by_plain_path_checks_out_the_ref_when_there_is_no_commit(git_repo):
    buildable = Buildable.objects.create(repository=str(git_repo), ref="first")
    target = make_target("command", {"command": "cat version.txt", "clone": True}, buildable)
    run_step(target)
    assert "\none\n" in log_text(target, "output")


def test_clone_of_a_missing_repository_fails(tmp_path):
    buildable = Buildable.objects.create(repository=str(tmp_path / "nowhere"), commit="a" * 40)
    target = make_target("command", {"command": "true", "clone": True}, buildable)
    with pytest.raises(StepFailed, match="git clone"):
        run_step(target)


def test_clone_refuses_a_repository_that_looks_like_an_option():
    buildable = Buildable.objects.create(repository="--upload-pack=touch /tmp/x", commit="a" * 40)
    target = make_target("command", {"command": "true", "clone": True}, buildable)
    with pytest.raises(StepFailed, match="looks like an option"):
        run_step(target)


def test_junit_files_become_unit_results_of_the_target(buildable):
    command = f"mkdir -p reports && cat > reports/junit.xml <<'XML'\n{JUNIT}XML"
    target = make_target("command", {"command": command, "junit": "reports/*.xml"}, buildable)
    run_step(target)
    results = {unit.name: unit for unit in UnitResult.objects.filter(target=target)}
    assert {name: unit.result for name, unit in results.items()} == {
        "test_add": "pass",
        "test_remove": "fail",
        "test_boom": "broken",
        "test_later": "skip",
    }
    assert results["test_add"].namespace == "shop.TestCart"
    assert results["test_add"].duration == 0.25
    assert results["test_remove"].duration == 1000.5
    assert "assert 2 == 1" in results["test_remove"].details


def test_a_failing_command_still_reports_its_junit_results(buildable):
    command = f"cat > junit.xml <<'XML'\n{JUNIT}XML\nexit 1"
    target = make_target("command", {"command": command, "junit": ["junit.xml"]}, buildable)
    with pytest.raises(StepFailed, match="status 1"):
        run_step(target)
    assert UnitResult.objects.filter(target=target).count() == 4


def test_a_passing_command_whose_junit_report_is_missing_fails(buildable):
    target = make_target("command", {"command": "true", "junit": ["junit.xml"]}, buildable)
    with pytest.raises(StepFailed, match="No JUnit report"):
        run_step(target)


def test_junit_with_an_entity_bomb_is_refused_not_expanded(buildable):
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<testsuite><testcase name="&b;"/></testsuite>'
    )
    command = f"cat > junit.xml <<'XML'\n{bomb}\nXML"
    target = make_target("command", {"command": command, "junit": "junit.xml"}, buildable)
    run_step(target)
    assert not UnitResult.objects.filter(target=target).exists()
    assert "refused" in log_text(target, "output")


def test_switched_off_command_steps_are_refused_at_run_time(buildable, settings):
    target = make_target("command", {"command": "echo hi"}, buildable)
    settings.HARBOR_ALLOW_COMMAND_STEPS = False
    with pytest.raises(StepFailed, match="switched off"):
        run_step(target)
    assert not BuildLog.objects.filter(target=target).exists()


def test_switched_off_command_steps_are_refused_at_plan_import(settings):
    settings.HARBOR_ALLOW_COMMAND_STEPS = False
    plan = {"name": "cmd", "steps": [{"key": "a", "type": "command", "command": "true"}]}
    with pytest.raises(PlanError, match="switched off"):
        import_plan(plan)


def test_a_command_step_without_a_command_is_refused_at_plan_import():
    plan = {"name": "cmd", "steps": [{"key": "a", "type": "command", "junit": "x.xml"}]}
    with pytest.raises(PlanError, match="option 'command' is required"):
        import_plan(plan)


def test_a_command_produces_its_declared_uri_artifacts(buildable):
    command = (
        'printf \'{"uri": "https://ci.example.com/%s", "name": "Report"}\' "$HARBOR_BUILD_ID"'
        ' > "$HARBOR_ARTIFACTS/report.json"'
    )
    config = {"command": command, "artifacts": {"produces": ["report"], "consumes": []}}
    target = make_target("command", config, buildable)
    run_step(target)
    artifact = Artifact.objects.get(build=target.build, key="report")
    assert (artifact.artifact_type, artifact.generation) == ("uri", 1)
    assert artifact.data == {"uri": f"https://ci.example.com/{target.build_id}", "name": "Report"}


def test_a_declared_artifact_the_command_did_not_produce_fails_the_step(buildable):
    config = {"command": "true", "artifacts": {"produces": ["report"]}}
    with pytest.raises(StepFailed, match="did not produce the artifact 'report'"):
        run_step(make_target("command", config, buildable))


def test_an_artifact_with_a_refused_uri_fails_the_step(buildable):
    command = 'echo \'{"uri": "javascript:alert(1)"}\' > "$HARBOR_ARTIFACTS/report.json"'
    config = {"command": command, "artifacts": {"produces": ["report"]}}
    with pytest.raises(StepFailed, match="could not be created"):
        run_step(make_target("command", config, buildable))
    assert not Artifact.objects.exists()


def test_a_consumed_artifact_arrives_as_json_in_the_environment(buildable):
    target = make_target(
        "command",
        {"command": 'echo "$HARBOR_ARTIFACT_SITE_URL"', "artifacts": {"consumes": ["site-url"]}},
        buildable,
    )
    Artifact.objects.create(
        target=target,
        build=target.build,
        generation=1,
        key="site-url",
        artifact_type="uri",
        data={"uri": "https://example.com/site"},
    )
    run_step(target)
    assert '{"type": "uri", "uri": "https://example.com/site"}' in log_text(target, "output")


def test_a_consumed_artifact_that_does_not_exist_fails_the_step(buildable):
    config = {"command": "true", "artifacts": {"consumes": ["site-url"]}}
    with pytest.raises(StepFailed, match="site-url"):
        run_step(make_target("command", config, buildable))


def test_the_target_secret_never_reaches_the_log_even_when_printed_in_pieces(buildable):
    from builds.secrets import target_secret

    command = (
        'printf "whole=%s\\n" "$HARBOR_TARGET_SECRET"; '
        'printf "split=%.10s" "$HARBOR_TARGET_SECRET"; sleep 1.2; '
        'printf "%s\\n" "${HARBOR_TARGET_SECRET#??????????}"'
    )
    target = make_target("command", {"command": command}, buildable)
    run_step(target)
    text = log_text(target, "output")
    secret = target_secret(target.phid)
    assert secret not in text and secret[:10] not in text.replace("********", "")
    assert "whole=********" in text and "split=********" in text
