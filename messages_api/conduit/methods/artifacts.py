"""``harbormaster.createartifact``: attach a ``uri`` or ``file`` artifact to a build target
(``HarbormasterCreateArtifactConduitAPIMethod``, docs/harbormaster.md §6.4). Any target state is
accepted."""

from builds.artifacts import ArtifactError, MissingArtifactData, create_artifact
from builds.models import Artifact, BuildTarget
from builds.permissions import NotPermitted, check_can_message
from messages_api.conduit.errors import CallError, CoreError
from messages_api.conduit.params import get_typed, missing
from messages_api.conduit.registry import Call, conduit_method

TYPE_SPEC = "string-constant<" + ", ".join(f'"{t}"' for t in Artifact.Type.values) + ">"
PLAIN_TRUE = ("1", "true")


@conduit_method(
    "harbormaster.createartifact",
    "Attach an artifact to a build target: a `uri` (data: `uri`, optional `name` and "
    "`ui.external`) or a `file` (data: `filePHID`).",
    params={
        "buildTargetPHID": "required phid",
        "artifactKey": "required string",
        "artifactType": "required " + TYPE_SPEC,
        "artifactData": "required map<string, wild>",
    },
    returns="wild",
)
def createartifact(call: Call) -> dict:
    """Create the artifact; return ``{"data": [{"phid": …}]}``. Raises CallError for absent
    parameters or data keys, CoreError for an unknown target or type, bad data or a key the
    build already has in this run with another target, type or data. The same call
    repeated (a retried CI job) returns the artifact it created."""
    params = call.params
    absent = [key for key in call.method.params if key not in params]
    if absent:
        raise missing(absent)
    phid = get_typed(params, "buildTargetPHID", "phid")
    key = get_typed(params, "artifactKey", "string")
    artifact_type = get_typed(params, "artifactType", "string")
    data = get_typed(params, "artifactData", "map<string, wild>")
    target = BuildTarget.objects.select_related("build__plan").filter(phid=phid).first()
    if target is None:
        raise CoreError(f'No such build target "{phid}"!')
    try:
        # Harbormaster needs only view access; Harbor lets only those who may run the plan
        # write to its builds (builds.permissions).
        check_can_message(call.user, target.build, target)
    except NotPermitted as error:
        raise CoreError(str(error)) from error
    if not call.strict and isinstance(data.get("ui.external"), str):
        # Plain form fields are strings; Harbormaster casts this one to a bool.
        data = {**data, "ui.external": data["ui.external"].lower() in PLAIN_TRUE}
    try:
        artifact = create_artifact(target, key, artifact_type, data)
    except MissingArtifactData as error:
        raise CallError(str(error)) from error
    except ArtifactError as error:
        raise CoreError(str(error)) from error
    return {"data": [{"phid": artifact.phid}]}
