"""Load generation and clocks for the benchmark.

- Throughput: ``wrk`` (C, event loop, one thread per core), which costs the 2-core machine far
  less CPU than a Python client would, so the server gets the cores. gunicorn's sync workers
  close the connection after every response, so wrk reconnects each request, as any client
  of a sync gunicorn does.
- Per-message timing: Python threads with ``http.client`` (a connection per thread, re-opened
  when the server closes it). The low-rate runs cost the client little CPU; in the sustained
  runs the client's CPU is part of the load, for Harbor and the ceiling alike.
- Decisions: a ``LISTEN`` connection on the bench database receives the triggers' NOTIFYs
  (harness.TRIGGERS_SQL), stamped with ``time.monotonic()`` on arrival. The clock is the
  same process's as the senders', so "response returned → decision committed" needs no
  clock sync.
"""

import http.client
import json
import select
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from bench import harness

# A p99 above this, at a steady open-loop rate, means decisions queue up: not sustained.
STANDING_QUEUE_MS = 250
# The fractions of the saturated rate between which ``find_sustained`` searches.
SUSTAIN_FIRST = 0.9
SUSTAIN_FLOOR = 0.3

WRK_THREADS = 2
WRK_SCRIPT = """
local bodies = {BODIES}
local path = "{PATH}"
local headers = {{["Content-Type"] = "application/json"{AUTH}}}
local threads = 0
setup = function(thread)
  thread:set("first", threads)
  threads = threads + 1
end
local i = 0
request = function()
  -- wrk's threads each run this script; they take alternate bodies, so no two send one.
  i = i + 1
  return wrk.format("POST", path, headers, bodies[((i * {THREADS} + first) % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, "
    .. "\\"non2xx\\": %d, \\"socket_errors\\": %d}}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Throughput:
    """A wrk run's result: requests per second and latency percentiles (ms)."""

    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def wrk(
    path: str, bodies: Sequence[dict], clients: int, seconds: float, token: str = ""
) -> Throughput:
    """POST ``bodies`` (round robin) to ``path`` from ``clients`` connections for ``seconds``."""
    lua_bodies = "{" + ", ".join(_lua_string(json.dumps(b)) for b in bodies) + "}"
    auth = f', ["Authorization"] = "Bearer {token}"' if token else ""
    script = WRK_SCRIPT.format(BODIES=lua_bodies, PATH=path, AUTH=auth, THREADS=WRK_THREADS)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        output = subprocess.run(
            [
                "wrk",
                "-t",
                str(WRK_THREADS),
                "-c",
                str(clients),
                "-d",
                f"{int(seconds)}s",
                "--timeout",
                "10s",
                "-s",
                handle.name,
                f"http://127.0.0.1:{harness.PORT}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(handle.name).unlink()
    line = next(line for line in output.splitlines() if line.startswith("BENCHJSON "))
    data = json.loads(line.removeprefix("BENCHJSON "))
    return Throughput(
        rate=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        errors=data["non2xx"] + data["socket_errors"],
    )


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Client:
    """One keep-alive-if-the-server-allows HTTP connection posting JSON."""

    def __init__(self, token: str = ""):
        self.connection = http.client.HTTPConnection("127.0.0.1", harness.PORT, timeout=30)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def post(self, path: str, body: dict) -> tuple[int, float]:
        """POST ``body``; return (status, monotonic time the request started)."""
        started = time.monotonic()
        try:
            self.connection.request("POST", path, json.dumps(body), self.headers)
            response = self.connection.getresponse()
            response.read()
        except (http.client.HTTPException, OSError):
            self.connection.close()
            raise
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
        return response.status, started


class DecisionListener:
    """Receives the triggers' NOTIFYs in a thread: ``seen[key] = monotonic arrival time``,
    keyed ``"b:<build id>"`` or ``"c:<counter id>"``."""

    def __init__(self):
        self.seen: dict[str, float] = {}
        self.statuses: dict[str, str] = {}
        self._stop = threading.Event()
        self._connection = psycopg2.connect(f"{harness.PG}/{harness.BENCH_DB}")
        self._connection.autocommit = True
        with self._connection.cursor() as cursor:
            cursor.execute(f"LISTEN {harness.NOTIFY_CHANNEL}")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection = self._connection
        while not self._stop.is_set():
            if select.select([connection], [], [], 0.2) == ([], [], []):
                continue
            connection.poll()
            now = time.monotonic()
            while connection.notifies:
                payload = connection.notifies.pop(0).payload
                kind, ident, *rest = payload.split(":")
                key = f"{kind}:{ident}"
                self.seen.setdefault(key, now)
                if rest:
                    self.statuses[key] = rest[0]

    def wait_for(self, keys: Sequence[str], timeout: float) -> int:
        """Wait until every key was seen or ``timeout`` s passed; return how many are missing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            missing = sum(1 for key in keys if key not in self.seen)
            if not missing:
                return 0
            time.sleep(0.01)
        return sum(1 for key in keys if key not in self.seen)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._connection.close()


@dataclass
class Latencies:
    """Per-message "response returned → decision committed" latencies (ms), and losses."""

    values: list[float] = field(default_factory=list)
    missing: int = 0
    refused: int = 0
    send_rate: float = 0.0
    decision_rate: float = 0.0
    first_third_p50: float = 0.0
    last_third_p50: float = 0.0

    @property
    def p50(self) -> float:
        return percentile(self.values, 50)

    @property
    def p99(self) -> float:
        return percentile(self.values, 99)

    @property
    def backlog_growing(self) -> bool:
        """The latency of the run's last third is well above its first third's."""
        return self.last_third_p50 > 2 * self.first_third_p50 + 20

    @property
    def sustained(self) -> bool:
        """Every decision came, the backlog did not grow, and no standing queue formed
        (p99 within ``STANDING_QUEUE_MS``)."""
        return not self.missing and not self.backlog_growing and self.p99 <= STANDING_QUEUE_MS


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def send_and_time(
    listener: DecisionListener,
    jobs: Sequence[tuple[str, dict, str]],
    rate: float | None,
    clients: int,
    token: str = "",
    timeout: float = 20,
) -> Latencies:
    """POST each job ``(path, body, decision key)`` and time its decision.

    ``rate`` (messages/s) paces an open loop: job i is sent at start + i/rate by whichever of
    ``clients`` threads is free (late if all are busy). ``rate=None`` sends as fast as
    ``clients`` closed-loop threads can. Returns latencies from the start of each request
    answered 2xx to its decision's NOTIFY: Harbor may decide before it answers.
    """
    sent: dict[str, float] = {}
    refused = []
    next_index = iter(range(len(jobs)))
    lock = threading.Lock()
    start = time.monotonic() + 0.05

    def work() -> None:
        client = Client(token)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            if rate:
                delay = start + index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            path, body, key = jobs[index]
            status, at = client.post(path, body)
            if 200 <= status < 300:
                sent[key] = at
            else:
                refused.append(status)

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sending_ended = time.monotonic()
    missing = listener.wait_for(list(sent), timeout)
    return _latencies(listener, sent, refused, missing, start, sending_ended)


def _latencies(listener, sent, refused, missing, start, sending_ended) -> Latencies:
    order = sorted(sent, key=sent.get)
    values = [(listener.seen[k] - sent[k]) * 1000 for k in order if k in listener.seen]
    decided = [listener.seen[k] for k in order if k in listener.seen]
    third = max(1, len(values) // 3)
    result = Latencies(values=values, missing=missing, refused=len(refused))
    result.send_rate = len(sent) / max(sending_ended - start, 1e-6)
    if decided:
        result.decision_rate = len(decided) / max(max(decided) - start, 1e-6)
        result.first_third_p50 = statistics.median(values[:third])
        result.last_third_p50 = statistics.median(values[-third:])
    return result


def find_sustained(
    run_at: Callable[[float], Latencies], saturated_rate: float, tries: int
) -> tuple[float, Latencies]:
    """The highest open-loop rate found ``sustained`` in at most ``tries`` (≥ 1) runs of
    ``run_at(rate)``, rates in messages/s: ``SUSTAIN_FIRST`` of ``saturated_rate`` first,
    which ends the search if it holds; then each run at the middle between the highest
    fraction that held (``SUSTAIN_FLOOR`` while none has) and the lowest that did not.
    Returns (rate, its latencies), or the last run's if none held.

    A bisection: each run halves the interval, so after four runs the figure is within
    0.075 of the saturated rate of the highest fraction that holds, where a fixed ladder of
    fractions (0.9, 0.75, 0.6, …) made two runs either side of one step differ by 0.15."""
    held, low, high = None, SUSTAIN_FLOOR, SUSTAIN_FIRST
    rate, result = 0.0, Latencies()
    for attempt in range(tries):
        fraction = SUSTAIN_FIRST if attempt == 0 else (low + high) / 2
        rate = saturated_rate * fraction
        result = run_at(rate)
        if not result.sustained:
            high = fraction
        elif attempt == 0:
            return rate, result
        else:
            held, low = (rate, result), fraction
    return held or (rate, result)
