"""Real Celery worker processes for tests, pointed at the test database.

A worker is a separate OS process (``celery -A harbor worker``) with the test run's queue
prefix and Redis database (see ``tests/settings.py``), so it takes only this run's tasks.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def worker_env(**overrides: str) -> dict[str, str]:
    """The environment of a worker that shares this test run's database, Redis and queues."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="harbor.settings",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        HARBOR_QUEUE_PREFIX=settings.HARBOR_QUEUE_PREFIX,
        HARBOR_BASE_URL=settings.HARBOR_BASE_URL,
        PYTHONPATH=str(ROOT),
    )
    env.update(overrides)
    return env


class WorkerProcess:
    """One ``celery worker`` process consuming this run's engine and target queues (or those
    of ``HARBOR_QUEUE_PREFIX`` when ``env`` gives one); ``queues=None`` starts it without
    ``-Q``, as a newcomer would. ``wrap`` is put before the command (``ip netns exec``)."""

    def __init__(
        self,
        concurrency: int = 2,
        queues: str | None = "engine,targets",
        wrap: tuple[str, ...] = (),
        **env: str,
    ):
        prefix = env.get("HARBOR_QUEUE_PREFIX", settings.HARBOR_QUEUE_PREFIX)
        chosen = ["-Q", ",".join(f"{prefix}.{q}" for q in queues.split(","))] if queues else []
        self.name = f"w{id(self)}@{socket.gethostname()}"
        self.command = [
            *wrap,  # e.g. ("ip", "netns", "exec", <namespace>): the worker on another "host"
            sys.executable,
            "-m",
            "celery",
            "-A",
            "harbor",
            "worker",
            *chosen,
            "-c",
            str(concurrency),
            "-l",
            "info",
            "-n",
            self.name,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        self.env = worker_env(**env)
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        self._ready = threading.Event()

    def start(self, timeout: float = 30) -> "WorkerProcess":
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_terminate_with_parent,
        )
        threading.Thread(target=self._read_output, daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("celery worker did not start:\n" + "".join(self.output[-40:]))
        return self

    def _read_output(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            if " ready." in line:
                self._ready.set()

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children) at once."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 10) -> None:
        if not self.process or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def _terminate_with_parent() -> None:
    """In the child before exec: have Linux send SIGTERM to the worker when the test process
    dies, so a test run that is killed leaves no worker behind taking tasks."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_for(predicate, timeout: float = 30, interval: float = 0.05, message: str = ""):
    """Poll ``predicate()`` until it returns something truthy; return that. Raises
    AssertionError with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout} s")


def start_build_on_queues_of(prefix: str, plan, buildable):
    """Start a build of ``plan`` whose first targets go to the targets queue of ``prefix`` (a
    Harbor of the test's own, with its own workers), marked queued under its keys, instead
    of this run's queues, which the session's workers may serve: they would run the build
    themselves. The start runs the first pass here, as a web process would."""
    from django.test import override_settings

    from builds import engine, locks
    from builds.engine import dispatch
    from workers.tasks import run_target

    first: list[int] = []
    with mock.patch.object(dispatch, "run_targets", lambda ids, *args, **kw: first.extend(ids)):
        build = engine.start_build(plan, buildable)
    # A plan with concurrency groups would queue its first pass instead, to this run's queues.
    assert first, "the start queued no target: this helper needs a plan without groups"
    with override_settings(HARBOR_QUEUE_PREFIX=prefix):
        locks.mark_targets_queued(first)
    for target_id in first:
        run_target.apply_async((target_id,), queue=f"{prefix}.targets")
    return build
