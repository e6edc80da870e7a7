"""Testing utilities: ``sleep`` and ``fail`` (Harbormaster's Sleep and Throw Exception)."""

from builds import step_options
from workers.steps.base import BuildStepImplementation, StepContext, StepFailed


class SleepStep(BuildStepImplementation):
    """Sleep ``seconds`` (default 0), stopping early if the target is aborted."""

    declaration = step_options.SLEEP
    description = "Sleep for a number of seconds."

    def run(self, context: StepContext) -> None:
        context.sleep(float(context.option("seconds")))


class FailStep(BuildStepImplementation):
    """Fail at once, with ``message`` (default "This step always fails.") in the log."""

    declaration = step_options.FAIL
    description = "Fail the build target."

    def run(self, context: StepContext) -> None:
        raise StepFailed(context.option("message"))
