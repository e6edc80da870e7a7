"""``approval``: wait for a person to approve or decline (``builds.approvals``).

The step itself only says on the target's log what it waits for; its target then waits
for a ``pass`` (approve) or ``fail`` (decline) message, sent from the build page, the
approvals page, the REST API or Conduit by someone the step's ``approvers`` allows.
"""

from builds import step_options
from workers.steps.base import BuildStepImplementation, StepContext


class ApprovalStep(BuildStepImplementation):
    declaration = step_options.APPROVAL
    description = "Wait for a person to approve or decline."

    def run(self, context: StepContext) -> None:
        group = context.option("approvers")
        who = f"staff or a member of {group!r}" if group else "anyone who may message the build"
        context.write_log("harbor", "approval", f"{context.option('prompt')}\nDecided by {who}.")
