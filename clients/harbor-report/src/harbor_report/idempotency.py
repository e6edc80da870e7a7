"""The idempotency key of a report: the same for every attempt of one CI job, and for a
re-run of that job, so Harbor stores its message once and answers a repeat ``duplicate``.

Derived from the CI's own run identifiers, chosen so that what each CI calls a re-run keeps
them, combined with the receiver and the message type:

- GitHub Actions: ``GITHUB_RUN_ID``, ``GITHUB_JOB``, ``GITHUB_ACTION`` (the step). "Re-run
  jobs" keeps the run id; only ``GITHUB_RUN_ATTEMPT`` grows, and it is left out.
- GitLab CI: ``CI_PIPELINE_ID``, ``CI_JOB_NAME``. "Retry" makes a new ``CI_JOB_ID`` in the
  same pipeline under the same name, so the job id is left out.
- Buildkite: ``BUILDKITE_BUILD_ID``, ``BUILDKITE_STEP_ID``, ``BUILDKITE_PARALLEL_JOB``. A
  retry is a new job (a new ``BUILDKITE_JOB_ID``) of the same step.
- Jenkins: ``BUILD_TAG`` (``jenkins-<job>-<number>``). A ``retry`` block keeps it;
  "Rebuild" and "Replay" start a new build with a new number, whose report is a new message.

Elsewhere, without ``--idempotency-key``, the key is random for each invocation: its own
retries are still answered ``duplicate``, a second invocation is a new message.
"""

import hashlib
import os
import uuid
from collections.abc import Mapping

MAX_KEY_CHARS = 200  # Harbor's limit
PREFIX = "harbor-report"

# (name, variable that says this CI runs the job, variables that identify the job's run)
CI_SYSTEMS = (
    ("github", "GITHUB_ACTIONS", ("GITHUB_RUN_ID", "GITHUB_JOB", "GITHUB_ACTION")),
    ("gitlab", "GITLAB_CI", ("CI_PIPELINE_ID", "CI_JOB_NAME")),
    (
        "buildkite",
        "BUILDKITE",
        ("BUILDKITE_BUILD_ID", "BUILDKITE_STEP_ID", "BUILDKITE_PARALLEL_JOB"),
    ),
    ("jenkins", "JENKINS_URL", ("BUILD_TAG",)),
)


def ci_run(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """``(ci name, its run identifiers joined by ":")`` for the CI found in ``environ``, or
    None when no known CI (with its first identifier set) runs this job."""
    for name, marker, variables in CI_SYSTEMS:
        values = [environ.get(variable, "") for variable in variables]
        if environ.get(marker) and values[0]:
            return name, ":".join(value for value in values if value)
    return None


def derive_key(
    receiver: str, message_type: str, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The idempotency key for sending ``message_type`` to ``receiver`` from this job, and
    where it came from (``github``, …, or ``random``). At most 200 characters: a longer one
    is replaced by its SHA-256."""
    found = ci_run(os.environ if environ is None else environ)
    if found is None:
        return f"{PREFIX}:random:{uuid.uuid4()}", "random"
    name, run = found
    key = f"{PREFIX}:{name}:{run}:{receiver}:{message_type}"
    if len(key) > MAX_KEY_CHARS:
        key = f"{PREFIX}:{name}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return key, name
