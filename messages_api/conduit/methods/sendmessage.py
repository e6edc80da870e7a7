"""``harbormaster.sendmessage``: the same engine call as ``POST /api/v1/sendmessage``.

Follows ``HarbormasterSendMessageConduitAPIMethod`` (docs/harbormaster.md §2) for the parameters,
their order of checks and the error texts. Unit results and lint messages are checked first with
Harbormaster's type rules (``PhutilTypeSpec``: missing keys are ``ERR-CONDUIT-CALL``, wrong
types ``ERR-CONDUIT-CORE``), then with the REST API's serializers, which also refuse values
Harbormaster would store (an undocumented result or severity). What the message does is the
engine's decision; its refusals come back as ``ERR-CONDUIT-CORE`` with the same explanation
the REST API gives (Beyond Harbormaster, docs/design.md §5), except that the same sender
repeating the verdict which decided a target succeeds and stores nothing, as a retried CI
job expects (Harbormaster stores every message; REST has idempotency keys instead).
"""

import re
from typing import Any

from builds import engine, phids
from builds.models import Build, Buildable, BuildMessage, BuildTarget
from builds.numbers import ascii_int
from builds.permissions import NotPermitted
from messages_api.conduit.errors import CoreError
from messages_api.conduit.params import check_map, invalid_type
from messages_api.conduit.registry import Call, conduit_method
from messages_api.errors import flatten_errors
from messages_api.serializers import LintMessageSerializer, UnitResultSerializer

# Harbormaster's types; a rerun names a step, which only the REST commands endpoint takes.
MESSAGE_TYPES = sorted(set(BuildMessage.Type.values) - {BuildMessage.Type.RERUN})
TYPE_SPEC = "string-constant<" + ", ".join(f'"{t}"' for t in MESSAGE_TYPES) + ">"
# Harbormaster's declared keys and types (HarbormasterBuildUnitMessage /
# HarbormasterBuildLintMessage::newFromDictionary), in its order.
UNIT_SPECS = {
    "name": "string",
    "result": "string",
    "namespace": "optional string",
    "engine": "optional string",
    "duration": "optional float|int",
    "path": "optional string",
    "coverage": "optional map<string, wild>",
    "details": "optional string",
    "format": "optional string",
}
LINT_SPECS = {
    "name": "string",
    "code": "string",
    "severity": "string",
    "path": "string",
    "line": "optional int",
    "char": "optional int",
    "description": "optional string",
}
RECEIVER_MODELS = {phids.BUILD_TARGET: BuildTarget, phids.BUILD: Build, phids.BUILDABLE: Buildable}
MONOGRAM = re.compile(r"^B([1-9][0-9]*)$")


@conduit_method(
    "harbormaster.sendmessage",
    "Send a message to a build target (pass, fail or work, with optional unit and lint "
    "results), or a command (restart, abort, pause, resume) to a build or to every build "
    "of a buildable. Beyond Harbormaster: fields, the values deciding an approval step.",
    params={
        "receiver": "required string|phid",
        "type": "required " + TYPE_SPEC,
        "unit": "optional list<wild>",
        "lint": "optional list<wild>",
        "fields": "optional map<string, string>",
        "buildTargetPHID": "deprecated optional phid",
    },
    returns="void",
)
def sendmessage(call: Call) -> None:
    """Store the message through ``engine.receive_message``; return null. Raises CoreError
    or CallError with Harbormaster's texts where it has them."""
    params = call.params
    name = _receiver_name(params)
    message_type = params.get("type")
    if not message_type:
        raise CoreError(
            'Call omits required "type" parameter. Specify the type of message you want to send.'
        )
    if not isinstance(message_type, str):
        raise invalid_type("type", "required " + TYPE_SPEC, message_type)
    receiver_phid, kind = resolve_receiver(name)
    unit, lint = _results(params, kind)
    fields = params.get("fields")
    if fields is not None and not (
        isinstance(fields, dict) and all(isinstance(v, str) for v in fields.values())
    ):
        raise invalid_type("fields", "optional map<string, string>", fields)
    try:
        # A re-run CI job re-sends its verdict, and Conduit has no idempotency key.
        engine.receive_message(
            receiver_phid,
            message_type,
            author=call.user,
            unit=unit,
            lint=lint,
            repeat_succeeds=True,
            fields=fields,
        )
    except engine.ReceiverNotFound as error:
        raise CoreError(_unable_to_load(name)) from error
    except (engine.InvalidMessage, engine.MessageRefused, NotPermitted) as error:
        raise CoreError(str(error)) from error
    return None


def _receiver_name(params: dict) -> str:
    receiver, legacy = params.get("receiver"), params.get("buildTargetPHID")
    if receiver is not None and legacy is not None:
        raise CoreError(
            'Call specifies both "receiver" and "buildTargetPHID". When using the modern '
            '"receiver" parameter, omit the deprecated "buildTargetPHID" parameter.'
        )
    name = receiver if receiver is not None else legacy
    if not name:
        raise CoreError(
            'Call omits required "receiver" parameter. Specify the PHID of the object you '
            "want to send a message to."
        )
    if not isinstance(name, str):
        key = "receiver" if receiver is not None else "buildTargetPHID"
        raise invalid_type(key, "required string|phid", name)
    return name


def resolve_receiver(name: str) -> tuple[str, str]:
    """Return ``(phid, type)`` of the target, build or buildable called ``name`` (a PHID, or
    a buildable's monogram ``B12``); raise CoreError if there is none."""
    match = MONOGRAM.match(name)
    if match:
        # None for more digits than int() converts, which no buildable's id has.
        buildable_id = ascii_int(match.group(1))
        found = Buildable.objects.filter(pk=buildable_id).values_list("phid", flat=True)
        if buildable_id is None or not found:
            raise CoreError(_unable_to_load(name))
        return found[0], phids.BUILDABLE
    kind = phids.phid_type(name)
    model = RECEIVER_MODELS.get(kind)
    if model is None or not model.objects.filter(phid=name).exists():
        raise CoreError(_unable_to_load(name))
    return name, kind


def _unable_to_load(name: str) -> str:
    return f'Unable to load object "{name}" to receive message.'


def _results(params: dict, kind: str) -> tuple[list[dict] | None, list[dict] | None]:
    """The validated ``unit`` and ``lint`` lists (None when absent). Sent to anything but a
    build target, even an empty list is refused (docs/harbormaster.md §2.2 step 6)."""
    if kind != phids.BUILD_TARGET:
        for key in ("unit", "lint"):
            if key in params:
                raise CoreError(
                    f'Call includes "{key}" parameter. This parameter must be omitted when '
                    "the receiver is not a Build Target."
                )
        return None, None
    # Harbormaster converts lint before unit (docs/harbormaster.md §2.3).
    lint = _validated("lint", params.get("lint"), LINT_SPECS, LintMessageSerializer, "lint message")
    unit = _validated("unit", params.get("unit"), UNIT_SPECS, UnitResultSerializer, "unit result")
    return unit, lint


def _validated(key: str, items: Any, specs: dict, serializer_class, what: str) -> list | None:
    if items is None:
        return None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise invalid_type(key, "optional list<map<string, wild>>", items)
    validated = []
    for index, item in enumerate(items):
        check_map(item, specs)
        # Harbormaster drops keys it does not know (docs/harbormaster.md §2.3); the REST
        # serializers refuse them, so only the known ones are handed over.
        serializer = serializer_class(data={k: v for k, v in item.items() if k in specs})
        if not serializer.is_valid():
            path, messages = next(iter(flatten_errors(serializer.errors).items()))
            raise CoreError(f'Invalid {what} {index} in "{key}": {path}: {messages[0]}')
        validated.append(dict(serializer.validated_data))
    return validated
