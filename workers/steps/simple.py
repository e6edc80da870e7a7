"""Testing utilities: ``sleep`` and ``fail`` (Harbormaster's Sleep and Throw Exception)."""

from workers.steps.base import BuildStepImplementation, StepContext, StepFailed


class SleepStep(BuildStepImplementation):
    """Sleep ``seconds`` (default 0), stopping early if the target is aborted."""

    name = "sleep"
    description = "Sleep for a number of seconds."
    supports_wait_for_message = True

    def run(self, context: StepContext) -> None:
        context.sleep(float(context.config.get("seconds", 0)))


class FailStep(BuildStepImplementation):
    """Fail at once, with ``message`` (default "This step always fails.") in the log."""

    name = "fail"
    description = "Fail the build target."

    def run(self, context: StepContext) -> None:
        raise StepFailed(context.config.get("message", "This step always fails."))
