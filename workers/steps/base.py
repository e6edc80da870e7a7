"""What every build step implementation shares: its context and how it reports failure."""

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from builds import logs
from builds.models import BuildTarget
from builds.secrets import mask_secrets, secret_forms
from builds.step_options import DECLARATIONS, StepDeclaration
from builds.variables import target_variables


class StepFailed(Exception):
    """The step ran and failed (e.g. the outside system answered 500); the message is
    written to the target's log."""


class StepTimedOut(StepFailed):
    """The step failed by running past its time limit (a ``retry.on: [timeout]`` matches
    it; other failures are ``failed``)."""


class StepAborted(Exception):
    """The step noticed that its target was aborted or claimed by another worker."""


class StepYield(Exception):
    """The step cannot go on yet and wants to run again in ``seconds``, without holding a
    worker meanwhile (Harbormaster's ``PhabricatorWorkerYieldException``). The step runs
    again from the start, so it must be safe to repeat."""

    def __init__(self, seconds: float):
        super().__init__(f"run again in {seconds} s")
        self.seconds = seconds


@dataclass
class StepContext:
    """What a running step may use: its target (a snapshot), the target's variables, a
    way to write logs, and ``should_stop()`` to poll while it waits on something slow."""

    target: BuildTarget
    variables: dict = field(init=False)
    stop_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        self.variables = target_variables(self.target)

    @property
    def config(self) -> dict:
        return self.target.config

    def option(self, name: str) -> Any:
        """The step's option ``name``: the config's value, else the default its type
        declares (``builds/step_options.py``). KeyError if the type declares no such option."""
        default = DECLARATIONS[self.target.step_type].option(name).default
        return self.config.get(name, copy.deepcopy(default))

    def write_log(self, source: str, log_type: str, text: str) -> None:
        """Write a whole log to the target, with the target's secrets masked."""
        logs.write(self.target, self.mask(source), log_type, self.mask(text))

    def mask(self, text: str) -> str:
        """``text`` with the target's callback secret masked (``builds.secrets``)."""
        return mask_secrets(text, self.variables)

    def open_live_log(self, source: str, log_type: str) -> "MaskedLiveLog":
        """A live log to append output to piece by piece, secrets masked."""
        live_log = logs.LiveLog(self.target, self.mask(source), log_type)
        return MaskedLiveLog(live_log, self.variables)

    def should_stop(self) -> bool:
        """True once the target's claim is lost (aborted, restarted, or claimed again)."""
        return self.stop_event.is_set()

    def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, raising StepAborted as soon as the step should stop."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self.stop_event.wait(min(remaining, 0.5)):
                raise StepAborted("the build target was aborted or claimed by another worker")


class MaskedLiveLog:
    """Appends to a live log with secrets masked, even a secret that arrives split across
    two pieces: an ending that could be the start of a secret is held back until the next
    piece (or ``close()``) shows how it goes on. Other text is passed on at once."""

    def __init__(self, live_log: logs.LiveLog, variables: dict):
        self.live_log = live_log
        self.variables = variables
        self.forms = secret_forms(variables)
        self.pending = ""

    def append(self, text: str) -> None:
        masked = mask_secrets(self.pending + text, self.variables)
        held = max(
            (k for form in self.forms for k in range(1, len(form)) if masked.endswith(form[:k])),
            default=0,
        )
        self.pending = masked[len(masked) - held :] if held else ""
        self.live_log.append(masked[: len(masked) - held])

    def close(self) -> None:
        self.live_log.append(self.pending)
        self.pending = ""
        self.live_log.close()


class BuildStepImplementation:
    """A step type. Subclasses set ``declaration`` (its name and options, which plan import
    checks: ``builds/step_options.py``) and implement ``run``.

    ``run(context)`` returns normally on success and raises StepFailed on failure; any
    other exception also fails the target, with a one-line reason (``workers.runner``).
    """

    declaration: StepDeclaration
    description: str = ""

    def run(self, context: StepContext) -> None:
        raise NotImplementedError
