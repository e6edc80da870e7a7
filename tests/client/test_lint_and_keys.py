"""The client's lint input (Harbor's JSON list, checkstyle XML), its idempotency keys (the
same for a re-run of a CI job, different for another job, receiver or verdict), and its
dependencies (requests only)."""

import ast
import json
import sys
from pathlib import Path

import pytest

from harbor_report import idempotency, lint
from harbor_report.junit import ReportError

CHECKSTYLE = """<?xml version="1.0" encoding="utf-8"?>
<checkstyle version="4.3">
  <file name="src/app.js">
    <error line="3" column="7" severity="error" message="'x' is never used."
           source="eslint.rules.no-unused-vars"/>
    <error line="9" severity="info" message="Prefer const." source="eslint.rules.prefer-const"/>
  </file>
  <file name="src/ok.js"/>
</checkstyle>
"""


def test_it_reads_checkstyle_xml_as_lint_messages(tmp_path):
    path = tmp_path / "lint.xml"
    path.write_text(CHECKSTYLE)
    assert lint.read_lint(str(path)) == [
        {
            "name": "no-unused-vars",
            "code": "eslint.rules.no-unused-vars",
            "severity": "error",
            "path": "src/app.js",
            "description": "'x' is never used.",
            "line": 3,
            "char": 7,
        },
        {
            "name": "prefer-const",
            "code": "eslint.rules.prefer-const",
            "severity": "advice",
            "path": "src/app.js",
            "description": "Prefer const.",
            "line": 9,
        },
    ]


def test_it_sends_a_json_list_of_lint_messages_as_given(tmp_path):
    items = [{"name": "unused import", "code": "F401", "severity": "warning", "path": "a.py"}]
    path = tmp_path / "lint.json"
    path.write_text(json.dumps(items))
    assert lint.read_lint(str(path)) == items


@pytest.mark.parametrize("text", ['{"lint": 3}', "[1, 2]", "<pmd/>", "not lint"])
def test_it_refuses_a_lint_file_it_cannot_read(tmp_path, text):
    path = tmp_path / "lint.txt"
    path.write_text(text)
    with pytest.raises(ReportError, match="lint.txt"):
        lint.read_lint(str(path))


GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "8812345", "GITHUB_JOB": "test"}
CI_JOBS = {
    "github": (GITHUB, {"GITHUB_RUN_ATTEMPT": "2"}, {"GITHUB_JOB": "lint"}),
    "gitlab": (
        {"GITLAB_CI": "true", "CI_PIPELINE_ID": "901", "CI_JOB_NAME": "test", "CI_JOB_ID": "1"},
        {"CI_JOB_ID": "2"},  # "Retry" makes a new job id in the same pipeline
        {"CI_JOB_NAME": "test 2/3"},
    ),
    "buildkite": (
        {"BUILDKITE": "true", "BUILDKITE_BUILD_ID": "b-1", "BUILDKITE_STEP_ID": "s-1"},
        {"BUILDKITE_JOB_ID": "j-2", "BUILDKITE_RETRY_COUNT": "1"},
        {"BUILDKITE_STEP_ID": "s-2"},
    ),
    "jenkins": (
        {"JENKINS_URL": "https://ci/", "BUILD_TAG": "jenkins-app-17"},
        {"STAGE_ATTEMPT": "2"},  # a retry block inside the same build
        {"BUILD_TAG": "jenkins-app-18"},  # "Rebuild": a new build
    ),
}


@pytest.mark.parametrize("ci", list(CI_JOBS))
def test_a_rerun_of_a_ci_job_sends_the_same_key_and_another_job_another(ci):
    run, rerun, other = CI_JOBS[ci]
    key, source = idempotency.derive_key("PHID-HMBT-a", "pass", run)
    assert source == ci
    assert idempotency.derive_key("PHID-HMBT-a", "pass", {**run, **rerun})[0] == key
    assert idempotency.derive_key("PHID-HMBT-a", "pass", {**run, **other})[0] != key


def test_the_key_differs_by_receiver_and_verdict_and_stays_within_harbors_limit():
    keys = {
        idempotency.derive_key(receiver, verdict, GITHUB)[0]
        for receiver in ("PHID-HMBT-a", "PHID-HMBT-b")
        for verdict in ("pass", "fail")
    }
    assert len(keys) == 4
    long_job = {**GITHUB, "GITHUB_JOB": "j" * 300}
    assert len(idempotency.derive_key("PHID-HMBT-a", "pass", long_job)[0]) <= 200


def test_outside_a_known_ci_the_key_is_random_for_each_invocation():
    first, source = idempotency.derive_key("PHID-HMBT-a", "pass", {})
    assert source == "random"
    assert idempotency.derive_key("PHID-HMBT-a", "pass", {})[0] != first


def test_the_client_imports_only_the_standard_library_and_requests():
    allowed = set(sys.stdlib_module_names) | {"requests", "harbor_report"}
    for path in Path(idempotency.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
