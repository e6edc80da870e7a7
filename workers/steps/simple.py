"""Testing utilities: ``sleep`` and ``fail`` (Harbormaster's Sleep and Throw Exception)."""

import math
from typing import Any

from workers.steps.base import BuildStepImplementation, StepContext, StepFailed


def check_seconds(value: Any, option: str, minimum: float) -> None:
    """Refuse a step option ``value`` that is not a finite number of at least ``minimum``
    seconds (a number, or text such as "2.5"); text holding a ``${...}`` variable passes,
    as its value is only known when the step runs. Raises ValueError naming ``option``."""
    if isinstance(value, str) and "${" in value:
        return
    try:
        seconds = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < minimum:
        raise ValueError(
            f"{option} must be a number of seconds, at least {minimum:g}; got {value!r}"
        )


class SleepStep(BuildStepImplementation):
    """Sleep ``seconds`` (default 0), stopping early if the target is aborted."""

    name = "sleep"
    description = "Sleep for a number of seconds."
    supports_wait_for_message = True

    @classmethod
    def check_config(cls, config: dict) -> None:
        """Refuse ``seconds`` that is not a finite number of 0 or more (called at plan
        import); raises ValueError. A ``${...}`` variable is checked when the step runs."""
        if "seconds" in config:
            check_seconds(config["seconds"], "seconds", minimum=0)

    def run(self, context: StepContext) -> None:
        context.sleep(float(context.config.get("seconds", 0)))


class FailStep(BuildStepImplementation):
    """Fail at once, with ``message`` (default "This step always fails.") in the log."""

    name = "fail"
    description = "Fail the build target."

    def run(self, context: StepContext) -> None:
        raise StepFailed(context.config.get("message", "This step always fails."))
