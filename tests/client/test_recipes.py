"""The example plans of docs/reporting-from-ci.md import as they are written, and their HTTP
step asks each CI for a run the way its API documents, carrying the target's PHID and
callback secret where the recipe on the CI side reads them."""

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from builds.plans import import_plan, load_plan_file
from builds.variables import substitute, uri_escape
from workers.steps import http as http_step

PLANS_DIR = Path(__file__).resolve().parents[2] / "examples" / "plans" / "ci"
PLANS = sorted(PLANS_DIR.glob("*.yaml"))
PHID, SECRET = "PHID-HMBT-aaaaaaaaaaaaaaaaaaaa", "s3cr3t/+&="
VARIABLES = {
    "target.phid": PHID,
    "target.secret": SECRET,
    "buildable.ref": "main",
    "buildable.commit": "4f2a9c1",
}


def request_of(name: str) -> tuple[str, str, dict | None]:
    """The plan's one step as the HTTP step sends it: method, URI and JSON body."""
    plan = import_plan(load_plan_file(PLANS_DIR / f"{name}.yaml"))
    (step,) = plan.steps.all()
    assert step.step_type == "http" and step.wait_for_message
    config = step.config
    uri = substitute(config["uri"], VARIABLES, uri_escape)
    body = http_step._body(config, VARIABLES, headers={})  # as the step sends it
    return config.get("method", "GET").upper(), uri, json.loads(body) if body else None


@pytest.mark.django_db
@pytest.mark.parametrize("path", PLANS, ids=[path.stem for path in PLANS])
def test_each_ci_trigger_plan_imports_and_waits_for_a_message(path):
    plan = import_plan(load_plan_file(path))
    assert [step.wait_for_message for step in plan.steps.all()] == [True]


@pytest.mark.django_db
def test_the_github_plan_dispatches_a_workflow_with_the_target_in_its_inputs():
    method, uri, body = request_of("github-actions")
    assert method == "POST"
    assert urlsplit(uri).path.startswith("/repos/") and uri.endswith("/dispatches")
    assert "/actions/workflows/" in uri
    assert body["ref"] == "main"
    # Workflow inputs are strings; the recipe's workflow declares these three.
    assert body["inputs"] == {"harbor_target": PHID, "harbor_secret": SECRET, "commit": "4f2a9c1"}


@pytest.mark.django_db
def test_the_gitlab_plan_triggers_a_pipeline_with_the_target_in_its_variables():
    method, uri, body = request_of("gitlab")
    assert method == "POST"
    assert urlsplit(uri).path.startswith("/api/v4/projects/") and uri.endswith("/pipeline")
    assert body["ref"] == "main"
    variables = {item["key"]: item["value"] for item in body["variables"]}
    assert variables == {"HARBOR_TARGET_PHID": PHID, "HARBOR_TARGET_SECRET": SECRET}


@pytest.mark.django_db
def test_the_jenkins_plan_builds_with_parameters_escaped_in_the_query():
    method, uri, body = request_of("jenkins")
    parts = urlsplit(uri)
    assert method == "POST" and body is None
    assert parts.path.endswith("/buildWithParameters")
    query = parse_qs(parts.query)
    assert query["HARBOR_TARGET_PHID"] == [PHID]
    assert query["HARBOR_TARGET_SECRET"] == [SECRET], "the secret's & and = escaped"
