"""The composite GitHub Action (clients/harbor-report/action.yml): its inputs are the
command line's options, so the two cannot drift, and its run step, executed by bash as the
runner does, maps harbor-report's exit status to the step's."""

import argparse
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer

from harbor_report import cli
from tests.client.conftest import CLIENT
from tests.junit.conftest import SAMPLES

ACTION = yaml.safe_load((CLIENT / "action.yml").read_text())
INPUTS = ACTION["inputs"]
INSTALL, REPORT = ACTION["runs"]["steps"]
# Credentials are inputs whose values the action puts in a variable of its own.
CREDENTIAL_INPUTS = {"secret-env": "secret", "token-env": "token"}
ACTION_ONLY_INPUTS = {"python"}
RECEIVER = "PHID-HMBT-aaaaaaaaaaaaaaaaaaaa"
SECRET = "s3cr3t-callback-value"
INPUT_EXPRESSION = re.compile(r"\$\{\{ inputs\.([a-z-]+) \}\}")


def command_line_options() -> dict[str, argparse.Action]:
    """harbor-report's options by name (``receiver``, ``secret-env``, …), and ``type``."""
    parser = cli.parser({})
    options = {}
    for action in parser._actions:
        if action.dest == "help":
            continue
        name = action.option_strings[0].removeprefix("--") if action.option_strings else "type"
        options[name] = action
    return options


def test_the_action_has_an_input_for_each_command_line_option_and_no_other():
    options = command_line_options()
    expected = {CREDENTIAL_INPUTS.get(name, name) for name in options}

    assert set(INPUTS) - ACTION_ONLY_INPUTS == expected


def test_the_inputs_default_as_the_command_line_does_but_the_type_is_auto():
    options = command_line_options()

    assert INPUTS["type"]["default"] == "auto"
    assert "auto" in options["type"].choices
    for name in ("attempts", "timeout"):
        assert options[name].type(INPUTS[name]["default"]) == options[name].default


def test_the_run_step_passes_every_input_through_the_environment_to_harbor_report():
    script, env = REPORT["run"], REPORT["env"]
    passed = {INPUT_EXPRESSION.fullmatch(value).group(1): name for name, value in env.items()}

    assert set(passed) == set(INPUTS) - ACTION_ONLY_INPUTS
    assert "${{" not in script, "an input spliced into the script could inject shell"
    assert "bin/harbor-report" in script
    for option in command_line_options():
        if option != "type":
            assert f"--{option} " in script, option
    for variable in passed.values():
        assert f"${variable}" in script or f"-env {variable}" in script, variable


def test_the_install_step_installs_the_client_from_the_actions_own_directory():
    assert '"$GITHUB_ACTION_PATH"' in INSTALL["run"]
    assert (CLIENT / "pyproject.toml").exists()
    assert INSTALL["env"]["PYTHON"] == "${{ inputs.python }}"


def run_report_step(harbor_report: Path, tmp_path: Path, **inputs: str):
    """Run the report step's script as the runner would (bash -e -o pipefail), with
    ``inputs`` (others at their defaults) and harbor-report where the install step puts
    it. Returns the finished process and the step's outputs."""
    runner_temp = tmp_path / "runner"
    (runner_temp / "harbor-report" / "bin").mkdir(parents=True)
    (runner_temp / "harbor-report" / "bin" / "harbor-report").symlink_to(harbor_report)
    values = {name: spec.get("default", "") for name, spec in INPUTS.items()} | inputs
    env = {
        name: INPUT_EXPRESSION.sub(lambda m: values[m.group(1)], value)
        for name, value in REPORT["env"].items()
    }
    outputs = tmp_path / "outputs"
    outputs.touch()
    env |= {"PATH": os.environ["PATH"], "RUNNER_TEMP": str(runner_temp)}
    env |= {"GITHUB_OUTPUT": str(outputs), "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "77"}
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", REPORT["run"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, dict(line.split("=", 1) for line in outputs.read_text().splitlines())


def expect(server: HTTPServer, body: dict, status: int) -> None:
    server.expect_ordered_request("/api/v1/sendmessage", method="POST").respond_with_json(
        body, status=status
    )


@pytest.mark.parametrize(
    ("answer", "status", "result"),
    [({"status": "accepted"}, 202, "accepted"), ({"status": "duplicate"}, 200, "duplicate")],
)
def test_an_accepted_or_duplicate_report_is_a_successful_step(
    harbor_report_command, httpserver, tmp_path, answer, status, result
):
    expect(httpserver, {"id": 5, "receiver": RECEIVER, "type": "fail", **answer}, status)

    done, outputs = run_report_step(
        harbor_report_command,
        tmp_path,
        receiver=RECEIVER,
        **{"base-url": httpserver.url_for("/")},
        junit=f"{SAMPLES}/surefire.xml\n\n{SAMPLES}/no-such-*.xml\n",
        secret=SECRET,
    )

    assert done.returncode == 0, done.stderr
    assert outputs == {"result": result}
    (request, _), *_ = httpserver.log
    assert request.headers["Authorization"] == f"Harbor-Target-Secret {SECRET}"
    body = json.loads(request.get_data())
    assert (body["type"], body["receiver"]) == ("fail", RECEIVER)  # auto, from the JUnit
    assert "no file matches --junit" in done.stderr
    assert done.stdout.count(SECRET) == 1
    assert f"::add-mask::{SECRET}" in done.stdout
    assert SECRET not in done.stderr


def test_a_refused_report_fails_the_step_with_harbors_reason(
    harbor_report_command, httpserver, tmp_path
):
    refusal = {"error": "conflict", "detail": "The build target is already passed (100%)."}
    expect(httpserver, refusal, 409)

    done, outputs = run_report_step(
        harbor_report_command,
        tmp_path,
        type="fail",
        receiver=RECEIVER,
        **{"base-url": httpserver.url_for("/")},
        token="api-token-value",
    )

    assert done.returncode == 1
    assert outputs == {"result": "refused"}
    assert json.loads(httpserver.log[0][0].get_data())["type"] == "fail"
    assert httpserver.log[0][0].headers["Authorization"] == "Bearer api-token-value"
    error = done.stdout.splitlines()[-1]
    assert error.startswith("::error title=Harbor refused the verdict::harbor-report: fail ")
    assert "already passed (100%25)." in error
