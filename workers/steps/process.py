"""Run a child process in its own process group, streaming its output while it runs.

Used by the ``command`` step (and its ``git clone``). The child's stdout and stderr are one
pipe, so the log reads as a terminal would show them; output is handed to ``on_output`` in
pieces as it arrives (flushed every ``FLUSH_SECONDS`` or ``FLUSH_BYTES``), from the calling
thread, so database writes stay on the step's own thread and connection.
"""

import codecs
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

FLUSH_SECONDS = 0.5
FLUSH_BYTES = 64 * 1024
KILL_GRACE_SECONDS = 5
READ_BYTES = 64 * 1024


@dataclass(frozen=True)
class ProcessResult:
    """How a child ended: ``exit_code`` (negative: killed by that signal) and why it was
    stopped early, if it was: ``"timeout"``, ``"stopped"`` or ``""``."""

    exit_code: int
    stopped_because: str = ""


def run_streaming(
    argv: list[str],
    *,
    cwd: str,
    env: dict[str, str],
    timeout: float,
    should_stop: Callable[[], bool],
    on_output: Callable[[str], None],
) -> ProcessResult:
    """Run ``argv`` in ``cwd`` with exactly ``env``; stream its output to ``on_output``.

    Stops the child's whole process group (SIGTERM, then SIGKILL after
    ``KILL_GRACE_SECONDS``) when ``timeout`` seconds have passed or ``should_stop()`` turns
    true; what is left of the group is killed when the child exits, so background processes
    it started cannot outlive the step. Raises ``OSError`` if the program cannot be started.
    """
    child = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so one signal reaches all of it
    )
    pieces: queue.Queue[bytes | None] = queue.Queue()
    reader = threading.Thread(target=_read_pipe, args=(child.stdout, pieces), daemon=True)
    reader.start()
    stopped_because = ""
    try:
        stopped_because = _pump(child, pieces, timeout, should_stop, on_output)
    finally:
        _end_group(child)
        reader.join(KILL_GRACE_SECONDS)
        _drain(pieces, on_output)
    return ProcessResult(child.returncode, stopped_because)


def _pump(child, pieces, timeout, should_stop, on_output) -> str:
    """Forward output until the pipe closes; return why the child was stopped, if it was."""
    deadline = time.monotonic() + timeout
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    buffer, last_flush, stopped_because = [], time.monotonic(), ""
    while True:
        try:
            piece = pieces.get(timeout=0.2)
        except queue.Empty:
            piece = b""
        if piece is None:  # the pipe closed: the child and its group are done writing
            break
        buffer.append(decoder.decode(piece))
        if (
            piece
            and sum(map(len, buffer)) >= FLUSH_BYTES
            or (time.monotonic() - last_flush >= FLUSH_SECONDS)
        ):
            _flush(buffer, on_output)
            last_flush = time.monotonic()
        if not stopped_because:
            stopped_because = _reason_to_stop(deadline, should_stop)
            if stopped_because:
                _signal_group(child, signal.SIGTERM)
                killer = threading.Timer(KILL_GRACE_SECONDS, _signal_group, (child, signal.SIGKILL))
                killer.daemon = True
                killer.start()
        if child.poll() is not None:
            # The child is gone; children it left behind would keep the pipe open for ever.
            _signal_group(child, signal.SIGKILL)
    buffer.append(decoder.decode(b"", final=True))
    _flush(buffer, on_output)
    child.wait()
    return stopped_because


def _reason_to_stop(deadline: float, should_stop: Callable[[], bool]) -> str:
    if should_stop():
        return "stopped"
    if time.monotonic() >= deadline:
        return "timeout"
    return ""


def _read_pipe(pipe, pieces: queue.Queue) -> None:
    """Reader thread: move raw output from the pipe to the queue; None marks its end."""
    try:
        while data := os.read(pipe.fileno(), READ_BYTES):
            pieces.put(data)
    finally:
        pipe.close()
        pieces.put(None)


def _flush(buffer: list[str], on_output: Callable[[str], None]) -> None:
    text = "".join(buffer)
    buffer.clear()
    if text:
        on_output(text)


def _drain(pieces: queue.Queue, on_output: Callable[[str], None]) -> None:
    """Forward whatever the reader queued after the pump stopped (only if it raised)."""
    rest = []
    while True:
        try:
            piece = pieces.get_nowait()
        except queue.Empty:
            break
        if piece:
            rest.append(piece.decode(errors="replace"))
    _flush(rest, on_output)


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _end_group(child: subprocess.Popen) -> None:
    """Make sure neither the child nor anything it started is left running."""
    _signal_group(child, signal.SIGKILL)
    try:
        child.wait(KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
