"""The build engine: the one place that changes a build's, target's or buildable's status.

Views, tasks and commands call these functions; they never write a status themselves
(docs/design.md §2–3). Everything here is safe to replay.
"""

from builds.engine.buildables import aggregate_status, update_buildable
from builds.engine.commands import command_refusal, derived_status
from builds.engine.messages import (
    InvalidMessage,
    MessageRefused,
    Receipt,
    ReceiverNotFound,
    receive_message,
)
from builds.engine.passes import PassResult
from builds.engine.repair import LostWork, find_lost_work
from builds.engine.reruns import dependents as rerun_dependents
from builds.engine.starting import PlanNotRunnable, find_or_create_buildable, start_build
from builds.engine.stuck import announce_stuck, unannounced_stuck_targets
from builds.engine.targets import (
    Claim,
    begin_target,
    claim_is_current,
    finish_in_pass,
    finish_target,
    postpone_target,
    renew_lease,
    request_update,
)
from builds.engine.timeouts import builds_with_expired_waits
from builds.engine.updates import (
    INFRASTRUCTURE_ERRORS,
    OUTAGE_ERRORS,
    run_own_passes,
    run_passes,
    update_after_commit,
    update_build,
)

__all__ = [
    "INFRASTRUCTURE_ERRORS",
    "OUTAGE_ERRORS",
    "Claim",
    "InvalidMessage",
    "LostWork",
    "MessageRefused",
    "PassResult",
    "PlanNotRunnable",
    "Receipt",
    "ReceiverNotFound",
    "aggregate_status",
    "announce_stuck",
    "begin_target",
    "builds_with_expired_waits",
    "claim_is_current",
    "command_refusal",
    "derived_status",
    "find_or_create_buildable",
    "find_lost_work",
    "finish_in_pass",
    "finish_target",
    "postpone_target",
    "receive_message",
    "renew_lease",
    "request_update",
    "rerun_dependents",
    "run_own_passes",
    "run_passes",
    "start_build",
    "unannounced_stuck_targets",
    "update_after_commit",
    "update_build",
    "update_buildable",
]
