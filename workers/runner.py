"""Running one claimed build target's step, keeping its lease alive meanwhile."""

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from builds import engine
from builds.models import BuildTarget
from builds.variables import UnknownVariable
from workers.steps import STEP_TYPES, StepAborted, StepContext, StepFailed, StepTimedOut, StepYield

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepOutcome:
    """How a step's run ended: ``error`` is None on success, else the text for the target's
    log; ``yield_seconds`` is set when the step asked to run again later; ``failure`` is
    how it failed (a ``BuildTarget.Failure``)."""

    error: str | None = None
    yield_seconds: float | None = None
    failure: str = BuildTarget.Failure.FAILED


def execute_step(claim: engine.Claim) -> StepOutcome:
    """Run the claimed target's step outside any transaction or lock.

    The error text is the step's own message for an expected failure, and one line naming
    the exception for an unexpected one: the page and the target's log are for plan
    authors, so the traceback goes to this worker's logger instead.
    """
    step_class = STEP_TYPES.get(claim.target.step_type)
    if step_class is None:
        return StepOutcome(error=f"Unknown build step type {claim.target.step_type!r}.")
    context = StepContext(claim.target)
    with LeaseKeeper(claim, context.stop_event):
        try:
            step_class().run(context)
        except StepYield as exc:
            return StepOutcome(yield_seconds=exc.seconds)
        except StepAborted as exc:
            context.write_log("harbor", "aborted", f"Step stopped: {exc}.")
            return StepOutcome(error=context.mask(str(exc)))
        except StepTimedOut as exc:
            return StepOutcome(error=context.mask(str(exc)), failure=BuildTarget.Failure.TIMEOUT)
        except (StepFailed, UnknownVariable) as exc:
            return StepOutcome(error=context.mask(str(exc)))
        except Exception as exc:
            logger.exception("build target %s: its step failed unexpectedly", claim.target.pk)
            return StepOutcome(error=context.mask(unexpected_failure(exc)))
    return StepOutcome()


def unexpected_failure(exc: Exception) -> str:
    """One line for the target's log: the exception's type and message, no traceback."""
    message = " ".join(str(exc).split())
    return f"The step failed unexpectedly: {type(exc).__name__}" + (
        f": {message}" if message else ""
    )


def record_outcome(claim: engine.Claim, outcome: StepOutcome, *, queue_update: bool = True) -> None:
    """Finish the claimed target with its step's ``outcome`` (or postpone it, for a step
    that yielded), retrying with backoff while the database is briefly unreachable (a
    restart, a failover).

    The step has already run: if its result were dropped, the target would be claimed again
    once its lease lapsed and the step would run a second time. The retries last at most
    half a lease, which still holds (it was renewed while the step ran); then the database
    error propagates. A retry is safe: the finish is conditional on the claim's attempt.
    ``queue_update=False`` leaves the build's pass after a finish to the caller
    (``engine.finish_target``).
    """
    deadline = time.monotonic() + settings.HARBOR_TARGET_LEASE / 2
    delay = 0.25
    while True:
        try:
            if outcome.yield_seconds is not None:
                engine.postpone_target(claim, outcome.yield_seconds)
            else:
                engine.finish_target(
                    claim, error=outcome.error, failure=outcome.failure, queue_update=queue_update
                )
            return
        except (OperationalError, InterfaceError):
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("finishing target %s: database unreachable, retrying", claim.target.pk)
            connection.close()  # the retry opens a new connection
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


class LeaseKeeper:
    """Watches a claim from a thread while its step runs: every ``HARBOR_ABORT_POLL``
    seconds it checks the claim is still current, and every third of
    ``HARBOR_TARGET_LEASE`` it renews the lease. Sets ``stop_event`` once the claim is lost
    (the build was aborted or restarted, or another worker took over), so the step stops
    within a poll interval (Harbormaster polls every 5 s, docs/harbormaster.md §1.10)."""

    def __init__(self, claim: engine.Claim, stop_event: threading.Event):
        self.claim = claim
        self.stop_event = stop_event
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        self.thread.join()

    def _watch(self) -> None:
        renew_every = max(settings.HARBOR_TARGET_LEASE / 3, 0.2)
        poll = min(settings.HARBOR_ABORT_POLL, renew_every)
        since_renewal = 0.0
        try:
            while not self.done.wait(poll):
                since_renewal += poll
                renew = since_renewal >= renew_every
                current = self._check(renew)
                if current is None:
                    continue  # the database is briefly away: try again at the next tick
                if renew:
                    since_renewal = 0.0
                if not current:
                    self.stop_event.set()
                    return
        finally:
            connection.close()

    def _check(self, renew: bool) -> bool | None:
        """Renew the lease (or only check the claim); None if the database could not be
        reached. A restart of the database must not end the watch: the step would run on
        with a lease nobody renews, and be claimed again and run twice once it lapsed."""
        try:
            if renew:
                return engine.renew_lease(self.claim)
            return engine.claim_is_current(self.claim)
        except (OperationalError, InterfaceError):
            logger.warning("lease keeper of target %s: database unreachable", self.claim.target.pk)
            connection.close()  # the next tick opens a new connection
            return None
