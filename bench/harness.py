"""The benchmark's own world: its database, Redis database, queue prefix and processes.

Everything here belongs to the benchmark alone, so nothing else on the machine interferes:
the database ``harbor_bench`` (dropped and created anew by every run), Redis database
``BENCH_REDIS_DB`` (flushed at the start), Celery queues ``harborbench.*``, and the
processes it starts (gunicorn and two Celery workers), which it stops by their own process
group when done.
"""

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("HARBOR_BENCH_DB", "harbor_bench")
PG = "postgres://postgres@127.0.0.1:5432"
BENCH_REDIS_DB = 13
PREFIX = "harborbench"
PORT = int(os.environ.get("HARBOR_BENCH_PORT", "8377"))
# Two sync gunicorn workers (one per core) and two prefork processes per Celery worker.
GUNICORN_WORKERS = 2
ENGINE_CONCURRENCY = 2
TARGET_CONCURRENCY = 2

NOTIFY_CHANNEL = "bench_decision"
# A NOTIFY at commit for every decision: a build reaching a complete status ("b:<id>:<status>")
# and every update of a ceiling counter ("c:<id>"). NOTIFY is delivered only on commit, so the
# listener sees the moment the decision became visible.
TRIGGERS_SQL = f"""
CREATE FUNCTION bench_notify_build() RETURNS trigger AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status
     AND NEW.status IN ('passed', 'failed', 'aborted', 'error', 'deadlocked') THEN
    PERFORM pg_notify('{NOTIFY_CHANNEL}', 'b:' || NEW.id || ':' || NEW.status);
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER bench_notify_build AFTER UPDATE ON builds_build
  FOR EACH ROW EXECUTE FUNCTION bench_notify_build();
CREATE FUNCTION bench_notify_counter() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('{NOTIFY_CHANNEL}', 'c:' || NEW.id);
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER bench_notify_counter AFTER UPDATE ON ceilings_ceilingcounter
  FOR EACH ROW EXECUTE FUNCTION bench_notify_counter();
"""


# One key for the bench and every process it starts (Harbor refuses to start without one).
SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50)


def bench_env() -> dict[str, str]:
    """The environment of the bench and of every process it starts."""
    return dict(
        os.environ,
        SECRET_KEY=SECRET_KEY,
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=f"{PG}/{BENCH_DB}",
        REDIS_URL=f"redis://127.0.0.1:6379/{BENCH_REDIS_DB}",
        HARBOR_QUEUE_PREFIX=PREFIX,
        HARBOR_BASE_URL=f"http://127.0.0.1:{PORT}",
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="WARNING",
        DEBUG="0",
    )


def recreate_database() -> None:
    """Drop and create ``BENCH_DB``, migrate it with ``bench.settings``, add the triggers."""
    admin = psycopg2.connect(f"{PG}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{BENCH_DB}"')
    admin.close()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=bench_env(),
        check=True,
    )
    connection = psycopg2.connect(f"{PG}/{BENCH_DB}")
    with connection, connection.cursor() as cursor:
        cursor.execute(TRIGGERS_SQL)
    connection.close()


def flush_redis() -> None:
    """Empty the bench's own Redis database (and only it)."""
    import redis

    redis.Redis(db=BENCH_REDIS_DB).flushdb()


@dataclass
class Process:
    """One process group the bench started, with its log file."""

    name: str
    command: list[str]
    log: Path
    popen: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)  # over bench_env()

    def start(self) -> "Process":
        self.popen = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**bench_env(), **self.env},
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL it after 10 s."""
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def children(self) -> list[int]:
        """Pids of the main process's children (gunicorn workers, Celery pool processes)."""
        return children_of(self.popen.pid)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def fresh_world():
    """Point this process at the bench's database and Redis, re-create both, set Django up
    and return a new ``bench.world.World`` (its user, token and plans)."""
    os.environ.update(bench_env())
    recreate_database()
    flush_redis()
    import django  # noqa: PLC0415 (only once the environment names the bench settings)

    django.setup()
    from bench import world  # noqa: PLC0415 (needs Django set up)

    return world.World()


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return sorted(found)


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Cluster:
    """Harbor's processes for the bench: gunicorn, an engine worker and a targets worker."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="harbor-bench-")))
    processes: dict[str, Process] = field(default_factory=dict)
    # Over bench_env() for every process started (e.g. a DATABASE_URL through a forwarder).
    env: dict[str, str] = field(default_factory=dict)
    # Also start Celery beat (the repair task, wait timeouts), for benches that need it.
    beat: bool = False

    def start(self) -> "Cluster":
        python = sys.executable
        self._add(
            "web",
            [
                python,
                "-m",
                "gunicorn",
                "harbor.wsgi",
                "-w",
                str(GUNICORN_WORKERS),
                "-b",
                f"127.0.0.1:{PORT}",
                "--worker-class",
                "sync",
            ],
        )
        for queue, concurrency in (("engine", ENGINE_CONCURRENCY), ("targets", TARGET_CONCURRENCY)):
            self._add(
                queue,
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "harbor",
                    "worker",
                    "-Q",
                    f"{PREFIX}.{queue}",
                    "-c",
                    str(concurrency),
                    "-l",
                    "info",
                    "-n",
                    f"{queue}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
            )
        if self.beat:
            schedule = str(self.directory / "beat-schedule")
            self._add("beat", [python, "-m", "celery", "-A", "harbor", "beat", "-s", schedule])
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _add(self, name: str, command: list[str]) -> None:
        log = self.directory / f"{name}.log"
        self.processes[name] = Process(name, command, log, env=self.env).start()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        pending = {"web", "engine", "targets"}
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                process = self.processes[name]
                if process.popen.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{process.log_text()[-3000:]}")
                if (
                    name == "web"
                    and _healthy()
                    or name != "web"
                    and " ready." in process.log_text()
                ):
                    pending.discard(name)
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"not ready after {timeout} s: {sorted(pending)}")

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()

    def peak_rss(self) -> dict[str, float]:
        """Largest VmHWM (MB) among each role's processes: a web worker, the engine and
        targets workers' pool processes, and their main processes."""
        peaks = {
            "web worker": max(peak_rss_mb(p) for p in self.processes["web"].children()),
            "web master": peak_rss_mb(self.processes["web"].popen.pid),
        }
        for name in ("engine", "targets"):
            process = self.processes[name]
            peaks[f"{name} worker (pool process)"] = max(peak_rss_mb(p) for p in process.children())
            peaks[f"{name} worker (main)"] = peak_rss_mb(process.popen.pid)
        return peaks


def _healthy() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def queued_tasks(queue: str) -> int:
    """Tasks waiting in bench queue ``queue`` (``engine``, ``targets``): the Redis transport
    keeps one list per priority step, the name alone for priority 0."""
    import redis

    r = redis.Redis(db=BENCH_REDIS_DB)
    name = f"{PREFIX}.{queue}"
    return sum(r.llen(key) for key in (name, *(f"{name}\x06\x16{p}" for p in (3, 6, 9))))


def queues_empty() -> bool:
    """True when neither bench queue holds a task waiting for a worker."""
    return not any(queued_tasks(queue) for queue in ("engine", "targets"))


def wait_quiet(timeout: float = 60, settle: float = 0.3) -> float:
    """Wait until both queues are empty (then ``settle`` s more); return seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if queues_empty():
            time.sleep(settle)
            if queues_empty():
                break
        time.sleep(0.05)
    return time.monotonic() - start


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as ``uptime`` prints them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
