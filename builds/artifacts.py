"""Creating artifacts: what a build target produced, a ``uri`` or a ``file``
(docs/harbormaster.md §4).

Used by Conduit's ``harbormaster.createartifact`` and by build steps. The artifact belongs to
the target's build and generation; keys are unique per (build, generation), so a restarted
build can produce the same keys again. Data is checked strictly, as Harbormaster's artifact
types check theirs with ``PhutilTypeSpec``:

| type | data keys |
|---|---|
| ``uri`` | ``uri`` string (http/https), ``name`` optional string, ``ui.external`` optional bool |
| ``file`` | ``filePHID`` string |

Harbormaster's ``host`` and ``working-copy`` types (Drydock leases) do not exist in Harbor.
"""

from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from builds.models import Artifact, BuildTarget

DATA_SPECS: dict[str, dict[str, tuple[type, bool]]] = {
    # key -> (Python type, required)
    Artifact.Type.URI: {"uri": (str, True), "name": (str, False), "ui.external": (bool, False)},
    Artifact.Type.FILE: {"filePHID": (str, True)},
}
TYPE_NAMES = {str: "string", bool: "bool"}
URI_PROTOCOLS = ("http", "https")
MAX_KEY_LENGTH = 255


class ArtifactError(ValueError):
    """The artifact cannot be created: unknown type, invalid data, or a duplicate key."""


class MissingArtifactData(ArtifactError):
    """Required data keys are missing ("Missing required parameters: uri")."""


def create_artifact(target: BuildTarget, key: str, artifact_type: str, data: dict) -> Artifact:
    """Create artifact ``key`` of ``artifact_type`` with ``data`` for ``target``'s build and
    generation, and return it. A repeat (the same key, type and data, as stored, for the
    same target: a retried call) returns the existing artifact and writes nothing. Raises
    ArtifactError (MissingArtifactData for absent keys) before writing anything, and
    ArtifactError, saying how it differs, if the key exists otherwise for that build and
    generation."""
    _check_key(key)
    _check_data(artifact_type, data)
    try:
        with transaction.atomic():
            return Artifact.objects.create(
                target=target,
                build_id=target.build_id,
                generation=target.generation,
                key=key,
                artifact_type=artifact_type,
                data=dict(data),
            )
    except IntegrityError as error:
        # The unique index made a concurrent creator wait for this one's commit, so the
        # row that won is visible to this (read committed) query.
        existing = Artifact.objects.get(
            build_id=target.build_id, generation=target.generation, key=key
        )
        problem = _difference(existing, target, artifact_type, data)
        if problem is None:
            return existing
        raise ArtifactError(
            f'An artifact with key "{key}" already exists for this build '
            f"(run {target.generation}){problem}."
        ) from error


def _difference(
    existing: Artifact, target: BuildTarget, artifact_type: str, data: dict
) -> str | None:
    """How a new artifact differs from ``existing`` under the same key (a phrase to end
    the refusal), or None if it is the same one. Data is compared as PostgreSQL stores it
    (``jsonb`` equality), so key order does not count and ``true`` is not ``1``."""
    if existing.target_id != target.pk:
        return ", created by another build target"
    if existing.artifact_type != artifact_type:
        return f' with type "{existing.artifact_type}", not "{artifact_type}"'
    if not Artifact.objects.filter(pk=existing.pk, data=dict(data)).exists():
        return " with different data"
    return None


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise ArtifactError("An artifact needs a non-empty key.")
    if len(key) > MAX_KEY_LENGTH:
        raise ArtifactError(f"An artifact key may be at most {MAX_KEY_LENGTH} characters long.")


def _check_data(artifact_type: str, data: Any) -> None:
    specs = DATA_SPECS.get(artifact_type)
    if specs is None:
        raise ArtifactError(
            f'There is no implementation available for artifacts of type "{artifact_type}".'
        )
    if not isinstance(data, dict):
        raise ArtifactError("Artifact data must be a map of keys to values.")
    absent = [k for k, (_, required) in specs.items() if required and k not in data]
    if absent:
        raise MissingArtifactData("Missing required parameters: " + ", ".join(absent))
    extra = [k for k in data if k not in specs]
    if extra:
        raise ArtifactError("Got unexpected parameters: " + ", ".join(extra))
    for name, (kind, _) in specs.items():
        value = data.get(name, kind())
        if not isinstance(value, kind):
            raise ArtifactError(
                f"Parameter '{name}' has invalid type. Expected type "
                f"'{TYPE_NAMES[kind]}', got type '{_type_name(value)}'."
            )
    if artifact_type == Artifact.Type.URI:
        _check_uri(data["uri"])


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "map"}
    return names.get(type(value), type(value).__name__)


def _check_uri(uri: str) -> None:
    scheme = urlsplit(uri).scheme.lower()
    if scheme not in URI_PROTOCOLS:
        raise ArtifactError(
            f'The URI "{uri}" is not valid: it must use one of these protocols: '
            + ", ".join(URI_PROTOCOLS)
            + "."
        )
