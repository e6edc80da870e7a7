"""Receiving messages: the inbox side of ``sendmessage`` (docs/harbormaster.md §2;
docs/design.md §3.5, §5).

The receiving row is locked first (the target's row for a verdict, the build's row for a
command), then the message is checked, stored with its unit results and lint messages in
the same transaction, and ``update_build`` fires after commit for a verdict or a command (a
``work`` message changes nothing a pass reads). Message ids therefore follow commit order per
receiver, so "the first received" is the lowest id.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from builds import approvals, metrics, phids
from builds.engine import rows
from builds.engine.commands import command_refusal
from builds.engine.reruns import UnknownStep, check_step
from builds.engine.updates import update_after_commit
from builds.models import (
    Build,
    Buildable,
    BuildMessage,
    BuildTarget,
    LintMessage,
    StatusEvent,
    UnitResult,
)
from builds.permissions import NotPermitted, can_message, check_can_decide, check_can_message

UNIT_FIELDS = (
    "name",
    "result",
    "namespace",
    "engine",
    "duration",
    "path",
    "details",
    "format",
    "coverage",
)
LINT_FIELDS = ("name", "code", "severity", "path", "line", "char", "description")


class ReceiverNotFound(LookupError):
    """No build target, build or buildable has the receiver PHID."""

    @classmethod
    def for_phid(cls, receiver_phid: str) -> "ReceiverNotFound":
        """The error with Harbormaster's text (``harbormaster.sendmessage``,
        docs/harbormaster.md §2.2)."""
        return cls(f'Unable to load object "{receiver_phid}" to receive message.')


class InvalidMessage(ValueError):
    """The message cannot go to this kind of receiver (e.g. a command to a target)."""


class MessageRefused(Exception):
    """The message could never count (Beyond Harbormaster: Harbormaster stores it silently).

    ``target_status`` and ``build_status`` say why, for the sender.
    """

    def __init__(
        self, detail: str, target_status: str | None = None, build_status: str | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.target_status = target_status
        self.build_status = build_status


@dataclass(frozen=True)
class Receipt:
    """The stored message (or, for a repeated idempotency key, the first one) and whether
    this call created it."""

    message: BuildMessage
    created: bool


def receive_message(
    receiver_phid: str,
    message_type: str,
    author=None,
    unit: list[dict] | None = None,
    lint: list[dict] | None = None,
    idempotency_key: str | None = None,
    repeat_succeeds: bool = False,
    step_key: str | None = None,
    fields: dict | None = None,
) -> Receipt:
    """Store a message for a build target (``pass``/``fail``/``work`` with unit results
    and lint messages) or a command (``restart``/``abort``/``pause``/``resume``) for a build
    or for each build of a buildable it can apply to, and fire ``update_build`` (not for
    ``work``, which no pass reads).

    ``unit``/``lint`` of None mean absent; sent to a build or buildable, even an empty list
    is refused (docs/harbormaster.md §2.2 step 6). ``author`` is a User, a ``TargetSecretHolder``
    (stored as no author), or None for Harbor itself; it must be allowed by
    ``builds.permissions.can_message`` (checked here, once the receiver is found and locked,
    so every caller gets the same rule). Raises ReceiverNotFound, NotPermitted,
    InvalidMessage or MessageRefused; nothing is stored then.

    ``fields`` are the values a person entered deciding an approval step's target
    (``builds.approvals``): only such a target takes them, only a person allowed by the
    step's ``approvers`` decides it (NotPermitted), and they must fit its field definitions
    (InvalidMessage).

    A ``rerun`` goes to a build and names ``step_key``, a step of its plan (InvalidMessage
    otherwise); that step and every step depending on it run again (``builds.engine.reruns``).

    With ``repeat_succeeds`` (Conduit, whose clients have no idempotency key: a re-run CI
    job re-sends what it sent), a verdict to a complete target that repeats the message
    which decided it, from the same user, returns that message's Receipt (``created``
    False), as Harbormaster would accept it, instead of MessageRefused.
    """
    try:
        if message_type == BuildMessage.Type.RERUN or step_key is not None:
            receipt = _receive_rerun(
                receiver_phid, message_type, author, idempotency_key, step_key, unit, lint
            )
        elif fields is not None and phids.phid_type(receiver_phid) != phids.BUILD_TARGET:
            raise InvalidMessage("fields can only be sent to an approval step's target.")
        else:
            receipt = _receive(
                receiver_phid,
                message_type,
                author,
                unit,
                lint,
                idempotency_key,
                repeat_succeeds,
                fields,
            )
    except (ReceiverNotFound, NotPermitted, InvalidMessage, MessageRefused):
        metrics.message_received(message_type, "refused")
        raise
    metrics.message_received(message_type, "accepted" if receipt.created else "duplicate")
    return receipt


def _receive(
    receiver_phid, message_type, author, unit, lint, idempotency_key, repeat_succeeds, fields
) -> Receipt:
    kind = phids.phid_type(receiver_phid)
    if kind == phids.BUILD_TARGET:
        return _receive_for_target(
            receiver_phid,
            message_type,
            author,
            unit or [],
            lint or [],
            idempotency_key,
            repeat_succeeds,
            fields,
        )
    if kind in (phids.BUILD, phids.BUILDABLE):
        results_sent = unit is not None or lint is not None
        return _receive_command(
            receiver_phid, kind, message_type, author, idempotency_key, results_sent
        )
    raise ReceiverNotFound.for_phid(receiver_phid)


def _receive_for_target(
    receiver_phid, message_type, author, unit, lint, key, repeat_succeeds, fields
) -> Receipt:
    if message_type not in BuildMessage.TARGET_TYPES:
        raise InvalidMessage(
            f'Message type "{message_type}" can not be sent to a build target; '
            "send pass, fail or work."
        )
    with transaction.atomic():
        target = _lock_target(receiver_phid)
        # Before the duplicate check: a repeated key must not show an outsider the message.
        check_can_message(author, target.build, target)
        values = _checked_decision(target, message_type, author, fields)
        duplicate = _find_duplicate(receiver_phid, key, message_type)
        if duplicate is None and repeat_succeeds:
            duplicate = _deciding_message(target, message_type, author)
        if duplicate:
            return Receipt(duplicate, created=False)
        _check_target_can_take(target, message_type)
        message = BuildMessage.objects.create(
            receiver_phid=receiver_phid,
            target=target,
            build_id=target.build_id,
            type=message_type,
            author=_stored_author(author),
            idempotency_key=key,
            fields=values,
        )
        _store_results(target, message, unit, lint)
        if message_type != BuildMessage.Type.WORK:
            # A pass never reads a ``work`` message, its unit results or its lint messages
            # (it settles targets by verdicts and commands only), so one would find nothing
            # new: a sender reporting progress does not wake the engine.
            update_after_commit(target.build_id)
    return Receipt(message, created=True)


def _checked_decision(target: BuildTarget, message_type: str, author, fields) -> dict:
    """The approval values to store with a message to ``target`` ({} for other steps'
    targets). A verdict to an approval's target must come from a person allowed to decide
    it (NotPermitted), and its fields must fit the step's (InvalidMessage)."""
    if target.step_type != approvals.APPROVAL:
        if fields:
            raise InvalidMessage("fields can only be sent to an approval step's target.")
        return {}
    if message_type == BuildMessage.Type.WORK and not fields:
        return {}
    # The config is read only here: no other message needs it (builds.engine.rows).
    config = BuildTarget.objects.values_list("config", flat=True).get(pk=target.pk)
    check_can_decide(author, config)
    try:
        return approvals.check_decision(config, message_type, fields)
    except approvals.InvalidDecision as exc:
        raise InvalidMessage(str(exc)) from exc


def _lock_target(receiver_phid: str) -> BuildTarget:
    target = rows.lock_receiving_target(receiver_phid)
    if target is None:
        raise ReceiverNotFound.for_phid(receiver_phid)
    return target


def _stored_author(author):
    """The user to record as the message's author: a target secret holder is not one."""
    return author if isinstance(author, get_user_model()) else None


def _find_duplicate(receiver_phid: str, key: str | None, message_type: str) -> BuildMessage | None:
    """The message stored earlier under ``key`` for this receiver, if any. Raises
    MessageRefused when that message is of another type: answering "duplicate" would tell
    the sender that its (different) message counted."""
    if key is None:
        return None
    found = BuildMessage.objects.filter(receiver_phid=receiver_phid, idempotency_key=key).first()
    if found is not None and found.type != message_type:
        raise MessageRefused(
            f'The idempotency key "{key}" was used for message {found.pk}, a "{found.type}"'
            f' message, not "{message_type}"; use a new key for a different message.'
        )
    return found


def _deciding_message(target: BuildTarget, message_type: str, author) -> BuildMessage | None:
    """The message that settled ``target``, if the target is complete and that message was
    ``message_type`` from ``author`` (a user), read from the status event that records it.
    The target row is locked and a complete target never moves again, so this holds."""
    if not target.is_complete or not isinstance(author, get_user_model()):
        return None
    event = (
        StatusEvent.objects.filter(
            target=target,
            to_status=target.status,
            cause=StatusEvent.Cause.MESSAGE,
            message__type=message_type,
            message__author=author,
        )
        .select_related("message")
        .first()
    )
    return event.message if event else None


def _check_target_can_take(target: BuildTarget, message_type: str) -> None:
    """Raise MessageRefused when a verdict could never count (to an attempt superseded
    by a retry or rerun, too), or when a ``work`` message goes to a complete target. Early
    verdicts (target pending or building) are accepted."""
    build = target.build
    reason = None
    if target.superseded_by:
        reason = (
            f'it was attempt {target.step_attempt} of step "{target.step_key}", superseded '
            f"by a newer attempt (a {target.superseded_by}); send it to the current attempt"
        )
    elif target.is_complete:
        reason = f"the build target is already {target.status}"
    elif message_type == BuildMessage.Type.WORK:
        return
    elif target.generation != build.generation:
        reason = (
            f"the build target belongs to run {target.generation}, "
            f"not the current run {build.generation}"
        )
    elif build.is_complete:
        reason = f"the build is already {build.status}"
    elif not target.wait_for_message:
        reason = f'the build step "{target.step_key}" does not wait for messages'
    if reason:
        raise MessageRefused(
            f'Message "{message_type}" can not affect this build target: {reason}.',
            target_status=target.status,
            build_status=build.status,
        )


def _store_results(target: BuildTarget, message: BuildMessage, unit, lint) -> None:
    # Most messages carry no results, and an empty bulk_create still costs the ORM's checks.
    if unit:
        UnitResult.objects.bulk_create(
            UnitResult(
                target=target,
                message=message,
                **{k: v for k, v in item.items() if k in UNIT_FIELDS and v is not None},
            )
            for item in unit
        )
    if lint:
        LintMessage.objects.bulk_create(
            LintMessage(
                target=target,
                message=message,
                **{k: v for k, v in item.items() if k in LINT_FIELDS and v is not None},
            )
            for item in lint
        )


def _receive_command(receiver_phid, kind, command, author, key, results_sent) -> Receipt:
    noun = "build" if kind == phids.BUILD else "buildable"
    with transaction.atomic():
        builds = _permitted_builds(_lock_builds(receiver_phid, kind), author)
        if results_sent:
            raise InvalidMessage(
                f"unit and lint results can only be sent to a build target, not to a {noun}."
            )
        if command not in BuildMessage.COMMANDS:
            raise InvalidMessage(
                f'Message type "{command}" is not supported by a {noun}; '
                "send restart, abort, pause or resume."
            )
        duplicate = _find_duplicate(receiver_phid, key, command)
        if duplicate:
            return Receipt(duplicate, created=False)
        messages = [
            # The key is unique per receiver, so only the first build's message carries it.
            _store_command(build, receiver_phid, command, author, key if i == 0 else None)
            for i, build in enumerate(_builds_accepting(builds, command, kind))
        ]
    if not messages:
        raise MessageRefused(f'No build of this buildable can take "{command}" now.')
    return Receipt(messages[0], created=True)


def _receive_rerun(receiver_phid, message_type, author, key, step_key, unit, lint) -> Receipt:
    if message_type != BuildMessage.Type.RERUN:
        raise InvalidMessage(f'A step can only be given with "rerun", not "{message_type}".')
    if phids.phid_type(receiver_phid) != phids.BUILD:
        if phids.phid_type(receiver_phid) not in (phids.BUILD_TARGET, phids.BUILDABLE):
            raise ReceiverNotFound.for_phid(receiver_phid)
        raise InvalidMessage('"rerun" goes to a build, naming the step to run again.')
    if unit is not None or lint is not None:
        raise InvalidMessage("unit and lint results can only be sent to a build target.")
    if not step_key:
        raise InvalidMessage('"rerun" needs the key of the step to run again ("step").')
    with transaction.atomic():
        [build] = _lock_builds(receiver_phid, phids.BUILD)
        check_can_message(author, build)
        try:
            check_step(build, step_key)
        except UnknownStep as exc:
            raise InvalidMessage(str(exc)) from exc
        duplicate = _find_duplicate(receiver_phid, key, message_type)
        if duplicate:
            return Receipt(duplicate, created=False)
        refusal = command_refusal(build, message_type, step_key)
        if refusal:
            raise MessageRefused(refusal, build_status=build.status)
        message = _store_command(build, receiver_phid, message_type, author, key, step_key)
    return Receipt(message, created=True)


def _lock_builds(receiver_phid: str, kind: str) -> list[Build]:
    """Lock the receiving build, or every build of the receiving buildable in id order
    (the lock order of docs/design.md §3.2: build rows first). Raises ReceiverNotFound."""
    builds = Build.objects.select_for_update(no_key=True, of=("self",)).select_related("plan")
    if kind == phids.BUILD:
        found = list(builds.filter(phid=receiver_phid))
        if found:
            return found
    else:
        buildable = Buildable.objects.filter(phid=receiver_phid).first()
        if buildable is not None:
            return list(builds.filter(buildable=buildable).order_by("id"))
    raise ReceiverNotFound.for_phid(receiver_phid)


def _permitted_builds(builds: list[Build], author) -> list[Build]:
    """The builds ``author`` may send commands to. A buildable's command goes to the builds
    of plans the author may run; NotPermitted if there are builds and it may run none."""
    allowed: dict[int, bool] = {}  # plan id -> may: one query per plan, not per build
    for build in builds:
        if build.plan_id not in allowed:
            allowed[build.plan_id] = can_message(author, build)
    permitted = [build for build in builds if allowed[build.plan_id]]
    if builds and not permitted:
        check_can_message(author, builds[0])  # raises NotPermitted, saying why
    return permitted


def _builds_accepting(builds: list[Build], command: str, kind: str) -> list[Build]:
    """For a build receiver, the build if the command can apply, else MessageRefused; for a
    buildable, the builds it can apply to (docs/harbormaster.md §2.5–2.6)."""
    accepting = [b for b in builds if command_refusal(b, command) is None]
    if kind == phids.BUILD and not accepting:
        build = builds[0]
        raise MessageRefused(
            f"Unable to {command.capitalize()} Build: {command_refusal(build, command)}",
            build_status=build.status,
        )
    return accepting


def _store_command(
    build: Build, receiver_phid, command, author, key, step_key: str = ""
) -> BuildMessage:
    message = BuildMessage.objects.create(
        receiver_phid=receiver_phid,
        build=build,
        type=command,
        author=_stored_author(author),
        idempotency_key=key,
        step_key=step_key,
    )
    update_after_commit(build.pk)
    return message
