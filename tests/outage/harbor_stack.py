"""A PostgreSQL cluster of the test's own, and Harbor's processes on it.

The outage tests restart or stop PostgreSQL, so they cannot use the machine's cluster (other
test runs, a demo, CI share it): ``OwnPostgres`` creates a cluster on a free port with
Debian's ``pg_createcluster`` and drops it afterwards. ``HarborStack`` runs gunicorn and a
Celery worker against a database there, on queues of their own (the session's shared
workers never take their tasks), and is driven over HTTP as a sender would.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.workers import ROOT, WorkerProcess, _terminate_with_parent, wait_for

SECRET_KEY = "outage-tests-" + "k" * 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnPostgres:
    """A PostgreSQL cluster on a free port, trust auth, removed by ``drop()``."""

    def __init__(self):
        self.version = sorted(os.listdir("/etc/postgresql"), key=float)[-1]
        self.name = f"harbortest{os.getpid()}"
        self.port = free_port()

    def create(self) -> "OwnPostgres":
        subprocess.run(
            ["pg_createcluster", self.version, self.name, "-p", str(self.port), "--start"]
            + ["--", "--auth=trust"],
            check=True,
            capture_output=True,
        )
        # Durability buys a throw-away cluster nothing; a restart then takes well under 1 s.
        self.psql("ALTER SYSTEM SET fsync = off", database="postgres")
        self.restart()
        subprocess.run(
            ["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "harbor"],
            check=True,
        )
        return self

    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/harbor"

    def _ctl(self, action: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, action],
            check=True,
            capture_output=True,
        )

    def restart(self) -> None:
        self._ctl("restart")

    def stop(self) -> None:
        self._ctl("stop")

    def start(self) -> None:
        self._ctl("start")

    def psql(self, sql: str, database: str = "harbor") -> str:
        return subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-tAc", sql]
            + [database],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def drop(self) -> None:
        subprocess.run(
            ["pg_dropcluster", "--stop", self.version, self.name], check=False, capture_output=True
        )


class HarborStack:
    """gunicorn (2 workers) and one Celery worker (2 processes, with beat) on
    ``database_url``, queue prefix of their own; ``api(...)`` calls the REST API with an
    admin's token."""

    def __init__(self, database_url: str, prefix: str, tmp_path: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            "DATABASE_URL": database_url,
            "HARBOR_QUEUE_PREFIX": prefix,
            "SECRET_KEY": SECRET_KEY,
            "DEBUG": "false",
            "HARBOR_BASE_URL": self.base,
        }
        self.tmp_path = tmp_path
        self.web: subprocess.Popen | None = None
        self.worker: WorkerProcess | None = None
        self.token = ""

    def manage(self, *args: str) -> str:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "harbor.settings", **self.env}
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def start(self, plans: list[str]) -> "HarborStack":
        self.manage("migrate", "--noinput", "-v0")
        for plan in plans:
            self.manage("importplan", str(ROOT / plan))
        self.token = self.manage("createapitoken", "admin").strip().splitlines()[-1]
        # Short leases and repair bounds, and beat running the repair, so that a step whose
        # result was lost would be claimed again (and run twice) within the test.
        self.worker = WorkerProcess(
            concurrency=2,
            HARBOR_TARGET_LEASE="3",
            HARBOR_REPAIR_BOUND="2",
            HARBOR_ABORT_POLL="0.5",
            **self.env,
        )
        self.worker.command += ["-B", "-s", str(self.tmp_path / "beat-schedule")]
        self.worker.start()
        self._start_web()
        return self

    def _start_web(self) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "harbor.settings", **self.env}
        log = open(self.tmp_path / "gunicorn.log", "w")  # noqa: SIM115 (closed with the process)
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "harbor.wsgi", "-w", "2"]
            + ["-b", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_terminate_with_parent,
        )
        wait_for(self._answers, timeout=30, interval=0.2, message="gunicorn did not start")

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.base}/healthz", timeout=5).status_code in (200, 503)
        except requests.RequestException:
            return False

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def start_build(self, plan: str) -> int:
        buildable = {"repository": "https://example.com/r.git", "ref": "main", "commit": "c0ffee"}
        response = self.api("POST", "/api/v1/builds", json={"plan": plan, "buildable": buildable})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def build(self, build_id: int) -> dict:
        response = self.api("GET", f"/api/v1/builds/{build_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def waiting_target(self, build_id: int) -> str | None:
        """The PHID of the build's waiting target, or None while it has none."""
        targets = self.build(build_id)["targets"]
        return next((t["phid"] for t in targets if t["status"] == "waiting"), None)

    def stop(self) -> None:
        if self.worker:
            self.worker.stop()
        if self.web and self.web.poll() is None:
            self.web.terminate()
            try:
                self.web.wait(10)
            except subprocess.TimeoutExpired:
                self.web.kill()


def eventually(predicate, timeout: float, message: str):
    """``wait_for`` with a coarser poll, for predicates that make HTTP calls."""
    return wait_for(predicate, timeout=timeout, interval=0.25, message=message)


def now() -> float:
    return time.monotonic()
