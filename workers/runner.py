"""Running one claimed build target's step, keeping its lease alive meanwhile."""

import threading
import traceback

from django.conf import settings
from django.db import connection

from builds import engine
from builds.variables import UnknownVariable
from workers.steps import STEP_TYPES, StepAborted, StepContext, StepFailed


def execute_step(claim: engine.Claim) -> str | None:
    """Run the claimed target's step outside any transaction or lock.

    Returns None on success, else the error text for the target's log: the step's own
    message for an expected failure, the traceback for an unexpected exception.
    """
    step_class = STEP_TYPES.get(claim.target.step_type)
    if step_class is None:
        return f"Unknown build step type {claim.target.step_type!r}."
    context = StepContext(claim.target)
    with LeaseKeeper(claim, context.stop_event):
        try:
            step_class().run(context)
        except (StepFailed, StepAborted, UnknownVariable) as exc:
            return str(exc)
        except Exception:
            return traceback.format_exc()
    return None


class LeaseKeeper:
    """Renews a claim's lease every third of ``HARBOR_TARGET_LEASE`` from a thread while a
    step runs; sets ``stop_event`` when the claim is lost, so the step can stop."""

    def __init__(self, claim: engine.Claim, stop_event: threading.Event):
        self.claim = claim
        self.stop_event = stop_event
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._renew, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        self.thread.join()

    def _renew(self) -> None:
        interval = max(settings.HARBOR_TARGET_LEASE / 3, 0.2)
        try:
            while not self.done.wait(interval):
                if not engine.renew_lease(self.claim):
                    self.stop_event.set()
                    return
        finally:
            connection.close()
