"""Build step implementations, one module per step type, behind a registry.

``STEP_TYPES`` maps the type name used in plan files (``type: http``) to its class; each
class's options are declared in ``builds/step_options.py``, where plan import reads them.
"""

from workers.steps.approval import ApprovalStep
from workers.steps.base import (
    BuildStepImplementation,
    StepAborted,
    StepContext,
    StepFailed,
    StepTimedOut,
    StepYield,
)
from workers.steps.command import CommandStep
from workers.steps.flow import AbortOlderBuildsStep, WaitForPreviousBuildsStep
from workers.steps.http import HttpStep
from workers.steps.simple import FailStep, SleepStep

STEP_TYPES: dict[str, type[BuildStepImplementation]] = {
    step.declaration.name: step
    for step in (
        HttpStep,
        CommandStep,
        SleepStep,
        FailStep,
        WaitForPreviousBuildsStep,
        AbortOlderBuildsStep,
        ApprovalStep,
    )
}

__all__ = [
    "STEP_TYPES",
    "BuildStepImplementation",
    "StepAborted",
    "StepContext",
    "StepFailed",
    "StepTimedOut",
    "StepYield",
]
