"""Artifacts a ``command`` step produces and consumes (docs/harbormaster.md §1.6 step 8, §4).

A step declares them in its plan entry::

    artifacts:
      produces: [coverage-report]     # keys this step creates
      consumes: [build-output]        # keys it needs; plan import makes it depend on
                                      # the step producing each (builds/plans.py)

A command produces artifact ``key`` by writing the artifact's data as JSON to
``$HARBOR_ARTIFACTS/<key>.json``, with ``type`` (default ``uri``) and the type's data, e.g.
``{"uri": "https://ci.example.com/report/7", "name": "Coverage", "ui.external": true}``.
After the command exits 0, every declared key must have its file; each becomes an artifact
of the target's build and generation through ``builds.artifacts.create_artifact``, which
checks the data. Undeclared files are ignored. Harbor stores no files, so steps produce
``uri`` artifacts; ``file`` artifacts (``filePHID``) come from ``createartifact`` only.

A command consuming ``key`` finds that artifact as JSON (``{"type", ...data}``) in the
environment variable ``HARBOR_ARTIFACT_<KEY>`` (``build-output`` → ``HARBOR_ARTIFACT_
BUILD_OUTPUT``).
"""

import json
import re
from pathlib import Path

from builds.artifacts import ArtifactError, create_artifact
from builds.models import Artifact, BuildTarget
from workers.steps.base import StepFailed

DECLARATION_KEYS = frozenset({"produces", "consumes"})
MAX_ARTIFACT_FILE = 64 * 1024


def declared(config: dict, which: str) -> list[str]:
    """The keys a step's ``artifacts`` config ``produces`` or ``consumes`` (plan import has
    checked the shape)."""
    return list((config.get("artifacts") or {}).get(which) or [])


def environment_name(key: str) -> str:
    """``build-output`` → ``HARBOR_ARTIFACT_BUILD_OUTPUT``."""
    return "HARBOR_ARTIFACT_" + re.sub(r"[^A-Z0-9]", "_", key.upper())


def consumed_environment(target: BuildTarget, config: dict) -> dict[str, str]:
    """``HARBOR_ARTIFACT_*`` variables for the artifacts the step consumes; StepFailed if
    one does not exist in the target's build and generation."""
    keys = declared(config, "consumes")
    found = {
        artifact.key: artifact
        for artifact in Artifact.objects.filter(
            build_id=target.build_id, generation=target.generation, key__in=keys
        )
    }
    missing = [key for key in keys if key not in found]
    if missing:
        raise StepFailed(f"The artifact(s) {', '.join(missing)} this step consumes do not exist.")
    return {
        environment_name(key): json.dumps({"type": found[key].artifact_type, **found[key].data})
        for key in keys
    }


def create_produced(target: BuildTarget, config: dict, directory: Path) -> list[str]:
    """Create the artifacts the step declares from ``directory/<key>.json``; return lines
    for the log. Raises StepFailed for a missing or invalid file or refused data."""
    lines = []
    for key in declared(config, "produces"):
        data = _read(directory / f"{key}.json", key)
        artifact_type = data.pop("type", Artifact.Type.URI)
        try:
            artifact = create_artifact(target, key, artifact_type, data)
        except ArtifactError as exc:
            raise StepFailed(f"The artifact {key!r} could not be created: {exc}") from exc
        lines.append(f"Created {artifact.artifact_type} artifact {key!r} ({artifact.phid}).")
    return lines


def _read(path: Path, key: str) -> dict:
    if not path.is_file():
        raise StepFailed(f"The command did not produce the artifact {key!r} ($HARBOR_ARTIFACTS).")
    if path.stat().st_size > MAX_ARTIFACT_FILE:
        raise StepFailed(f"The artifact file for {key!r} is larger than {MAX_ARTIFACT_FILE} bytes.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise StepFailed(f"The artifact file for {key!r} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise StepFailed(f"The artifact file for {key!r} must hold a JSON object.")
    return data
