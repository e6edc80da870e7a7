"""Harbor on several hosts, simulated with network namespaces on one machine: web, two
engine workers and two step workers, each in a namespace of its own with a veth pair on a
bridge, reaching PostgreSQL and Redis through a TCP forwarder in the root namespace (which
also adds latency). Builds run a sleep step, then an HTTP step that calls an outside
system (a server in this process) and waits for its message, which that system sends to
the web host's REST API, retrying with the same idempotency key until answered.

Scenarios, one after another on the same hosts: a step worker's host cut off longer than
its lease, a step worker's host killed for good, an engine host partitioned for 30 s with
the other up, and 100 ms added to every database round trip. After each, for its builds: every
accepted message consumed exactly once, one target per (build, step, generation), no
complete build with an unfinished target, every build settled, and no repair storm: each
``run_target`` task of a target but its first was queued by a repair run, and a repair
queued one for a target only once the one before it had been missing for the repair bound
(repairs of one target at least ``MIN_REPAIR_GAP`` apart), at least one task for a first
step's target. Tasks are distinct Celery task ids in the step workers' JSON log lines, and
repairs the engine workers' ``repair:`` lines; a later step's target is usually claimed by
the pass of the worker that finished the step before it, with no task of its own. Tasks,
not deliveries, because one task may be delivered several times without any new work being
queued: a cut host's task retries once it is back, and the broker restores the task that
host held unacknowledged; each is refused at its claim. How many repairs a cut needs is not
fixed: a task the broker handed to the cut host's dead connection reaches it only once the
link is back (a repair queues another once its mark is overdue), and a claim waiting on a
row lock that the cut host's open transaction holds looks missing too once its mark's hold
lapses. What the design forbids is queueing work not yet shown missing, and that is what
the spacing holds.

Needs root and ``ip`` (skipped with the reason otherwise). Namespaces, bridge and
processes are removed however the test ends.
"""

import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count

from accounts.models import ApiToken
from builds.models import Build, Buildable, BuildLog, BuildMessage, BuildTarget
from tests.conftest import make_plan
from tests.multihost.net import Forwarder, Network, why_not
from tests.workers import (
    ROOT,
    WorkerProcess,
    _terminate_with_parent,
    start_build_on_queues_of,
    wait_for,
    worker_env,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.workers,
    pytest.mark.skipif(bool(why_not()), reason=why_not() or "runs"),
]

LEASE = 6  # HARBOR_TARGET_LEASE, seconds
BOUND = 6  # HARBOR_REPAIR_BOUND (beat repairs every 2 s), seconds
WORK = 3  # seconds the sleep step of each build takes
BUILDS = 8  # builds per scenario
SETTLE = 150  # seconds a scenario's builds have to settle
# A repair re-queues a target only when its mark is absent after a claim (then only once its
# lease lapsed) or overdue by the bound, so two repairs of one target are at least the
# shorter of the two apart; less a margin for the beat's and the log lines' jitter.
MIN_REPAIR_GAP = 0.8 * min(LEASE, BOUND)


class OutsideSystem:
    """The system HTTP steps call: answers at once, then sends the target's ``pass`` to
    Harbor's REST API from a thread, retrying (same idempotency key) until Harbor answers."""

    def __init__(self, host: str, web_url: str, token: str):
        self.web_url = web_url
        self.token = token
        self.accepted: Counter[str] = Counter()  # receiver phid: 202 answers
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                phid = parse_qs(urlparse(self.path).query)["target"][0]
                self.send_response(200)
                self.end_headers()
                threading.Thread(target=outer.report, args=(phid,), daemon=True).start()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/ci"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def report(self, phid: str) -> None:
        body = {"receiver": phid, "type": "pass", "idempotency_key": f"pass-{phid}"}
        headers = {"Authorization": f"Bearer {self.token}"}
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                answer = requests.post(
                    f"{self.web_url}/api/v1/sendmessage", json=body, headers=headers, timeout=10
                )
            except requests.RequestException:
                continue
            if answer.status_code < 500:
                if answer.status_code == 202:
                    self.accepted[phid] += 1
                return

    def close(self) -> None:
        self.server.shutdown()


class Harbor:
    """The hosts and their processes."""

    def __init__(self, net: Network, env: dict[str, str]):
        self.net = net
        self.env = env
        self.processes: list[subprocess.Popen] = []
        self.workers: dict[str, WorkerProcess] = {}
        # (host, worker), replaced workers too, for their logs
        self.every_worker: list[tuple[str, WorkerProcess]] = []

    def start_worker(self, host: str, queue: str) -> WorkerProcess:
        worker = WorkerProcess(
            concurrency=2, queues=queue, wrap=self.net.wrap(host), **self.env
        ).start(timeout=90)
        self.workers[host] = worker
        self.every_worker.append((host, worker))
        return worker

    def start(self, program: list[str], host: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [*self.net.wrap(host), sys.executable, *program],
            cwd=ROOT,
            env=worker_env(**self.env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_terminate_with_parent,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for _, worker in self.every_worker:
            worker.kill()
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait()


@pytest.fixture
def harbor(buildable):
    tag = os.getpid() % 100000
    net = Network(tag)
    forwarders: list[Forwarder] = []
    cluster = None
    try:
        net.up()
        hosts = {name: net.add_host(name) for name in ("web", "e1", "e2", "s1", "s2")}
        db = connection.settings_dict
        pg = Forwarder((net.gateway, 0), (db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
        redis_url = urlparse(settings.REDIS_URL)
        rd = Forwarder((net.gateway, 0), (redis_url.hostname, redis_url.port or 6379))
        forwarders += [pg, rd]
        env = {
            "DATABASE_URL": f"postgres://{db['USER']}@{net.gateway}:{pg.address[1]}/{db['NAME']}",
            "REDIS_URL": f"redis://{net.gateway}:{rd.address[1]}{redis_url.path}",
            "HARBOR_QUEUE_PREFIX": f"harbormulti{tag}",
            "HARBOR_TARGET_LEASE": str(LEASE),
            "HARBOR_REPAIR_BOUND": str(BOUND),
            "HARBOR_BUILD_LOCK_LEASE": "5",
            "HARBOR_ABORT_POLL": "1",
            "HARBOR_LOG_FORMAT": "json",
            "HARBOR_BASE_URL": f"http://{hosts['web']}:8000",
            "ALLOWED_HOSTS": "*",
        }
        cluster = Harbor(net, env)
        cluster.hosts, cluster.db_forwarder = hosts, pg
        for host in ("e1", "e2"):
            cluster.start_worker(host, "engine")
        for host in ("s1", "s2"):
            cluster.start_worker(host, "targets")
        gunicorn = ["-m", "gunicorn", "harbor.wsgi", "--workers", "2", "--bind", "0.0.0.0:8000"]
        cluster.start(gunicorn, "web")
        schedule = os.path.join(tempfile.mkdtemp(), "beat-schedule")
        cluster.start(["-m", "celery", "-A", "harbor", "beat", "--schedule", schedule], "web")
        web = f"http://{hosts['web']}:8000"
        wait_for(lambda: _answers(f"{web}/healthz"), timeout=60, interval=0.5)
        user = get_user_model().objects.create_superuser("ops", "ops@example.com", "x")
        cluster.outside = OutsideSystem(net.gateway, web, ApiToken.issue(user, name="ci")[1])
        cluster.plan = make_plan(
            "multihost",
            [
                {"key": "work", "config": {"seconds": WORK}},
                {
                    "key": "ci",
                    "step_type": "http",
                    "depends_on": ["work"],
                    "wait_for_message": True,
                    "config": {"uri": cluster.outside.url + "?target=${target.phid}"},
                },
            ],
        )
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
            if hasattr(cluster, "outside"):
                cluster.outside.close()
        for forwarder in forwarders:
            forwarder.close()
        net.down()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start_builds(harbor: Harbor, count: int = BUILDS) -> list[int]:
    commit = f"{time.monotonic_ns():040x}"[-40:]
    buildable = Buildable.objects.create(repository="r", ref="main", commit=commit)
    prefix = harbor.env["HARBOR_QUEUE_PREFIX"]
    return [start_build_on_queues_of(prefix, harbor.plan, buildable).pk for _ in range(count)]


def running_on(worker: WorkerProcess, build_ids: list[int]) -> set[int]:
    """Targets of ``build_ids`` whose ``work`` step the worker has started (from its log)."""
    found = set()
    for line in list(worker.output):
        if "running step work" in line:
            line = json.loads(line)
            if line["build_id"] in build_ids:
                found.add(line["target_id"])
    return found


def log_lines(harbor: Harbor) -> Iterator[tuple[str, dict]]:
    """``(host, line)`` for every JSON log line of every worker, replaced ones too."""
    for host, worker in harbor.every_worker:
        for text in list(worker.output):
            if text.startswith("{"):
                yield host, json.loads(text)


def run_tasks(harbor: Harbor) -> dict[int, dict[str, list[str]]]:
    """``run_target`` deliveries per target id, from every step worker's log: for each
    Celery task id, the hosts whose workers logged a delivery of it (a retry or a
    redelivery keeps its task's id; only a newly queued task has a new one)."""
    counted: dict[int, dict[str, list[str]]] = {}
    for host, line in log_lines(harbor):
        if "run_target started" in line["message"]:
            tasks = counted.setdefault(line["target_id"], {})
            tasks.setdefault(line["task_id"], []).append(host)
    return counted


def repairs(harbor: Harbor) -> dict[int, list[float]]:
    """The times (epoch seconds, sorted) at which a repair run queued a ``run_target`` for
    each target, from every worker's log."""
    found: dict[int, list[float]] = {}
    for _, line in log_lines(harbor):
        if line["message"].startswith("repair: build target"):
            when = datetime.fromisoformat(line["time"]).timestamp()
            found.setdefault(line["target_id"], []).append(when)
    return {target_id: sorted(times) for target_id, times in found.items()}


def storm_free(tasks: int, least: int, repair_times: list[float]) -> bool:
    """Whether a target's ``tasks`` (at least ``least``) are its first and one per repair,
    the repairs spaced as a repair that waits for work to be missing spaces them."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(repair_times)]
    return least <= tasks <= 1 + len(repair_times) and all(g >= MIN_REPAIR_GAP for g in gaps)


def target_story(harbor: Harbor, target_id: int) -> list[str]:
    """Every worker's log lines about target ``target_id``, in time order: ``time host
    task-id message`` (what a failed bound needs to tell a repair storm from a redelivery)."""
    about = re.compile(rf"target {target_id}\b")
    return sorted(
        f"{line['time']} {host} {line.get('task_id', '-')[:8]} {line['message'][:90]}"
        for host, line in log_lines(harbor)
        if about.search(line["message"])
    )


def assert_settled_and_sound(harbor: Harbor, build_ids: list[int], scenario: str) -> None:
    wait_for(
        lambda: not Build.objects.filter(pk__in=build_ids).exclude(status__in=Build.COMPLETE),
        timeout=SETTLE,
        interval=0.5,
        message="not every build settled",
    )
    assert set(Build.objects.filter(pk__in=build_ids).values_list("status", flat=True)) == {
        "passed"
    }
    messages = BuildMessage.objects.filter(build_id__in=build_ids, type="pass")
    messages = messages | BuildMessage.objects.filter(target__build_id__in=build_ids)
    assert messages.exists()
    assert not messages.filter(is_consumed=False).exists(), "an accepted message not consumed"
    per_key = messages.values("idempotency_key").annotate(n=Count("pk")).filter(n__gt=1)
    assert not per_key.exists(), "one idempotency key stored twice"
    targets = BuildTarget.objects.filter(build_id__in=build_ids)
    groups = targets.values("build_id", "step_key", "generation").annotate(n=Count("pk"))
    assert {group["n"] for group in groups} == {1}
    unfinished = targets.filter(status__in=("pending", "building", "waiting"))
    assert not unfinished.exists(), "a complete build with an unfinished target"
    counted, repaired = run_tasks(harbor), repairs(harbor)
    # A first step's target is queued (at least one task); the next step's is claimed by the
    # pass of the worker that finished the first, unless that pass ran elsewhere (its lock
    # busy), so it may have none of its own.
    for step_key, least in (("work", 1), ("ci", 0)):
        rows = targets.filter(step_key=step_key).values("pk", "status", "attempt", "lost_claims")
        outside = [
            {
                **row,
                "tasks delivered on": counted.get(row["pk"], {}),
                "story": target_story(harbor, row["pk"]),
            }
            for row in rows
            if not storm_free(len(counted.get(row["pk"], {})), least, repaired.get(row["pk"], []))
        ]
        # A string: pytest shortens a tuple or dict message, and the hosts are the point.
        assert not outside, f"{scenario}, step {step_key}: {outside}"


def test_harbor_on_five_hosts_survives_cuts_a_crash_a_partition_and_latency(harbor):
    # 1. A step worker's host is cut off for longer than its lease, then comes back.
    builds = start_builds(harbor)
    cut = wait_for(lambda: running_on(harbor.workers["s1"], builds), timeout=60)
    harbor.net.cut("s1")
    time.sleep(2 * LEASE + 2)
    reclaimed = wait_for(
        lambda: BuildTarget.objects.filter(pk__in=cut, attempt__gt=1).count() == len(cut),
        timeout=60,
        message="the cut host's targets were not claimed again",
    )
    harbor.net.restore("s1")
    assert reclaimed
    assert_settled_and_sound(harbor, builds, "a step host cut past its lease")
    discarded = wait_for(
        lambda: BuildLog.objects.filter(target_id__in=cut, log_type="discarded").exists(),
        timeout=30,
        message="the late finish was not logged on the target",
    )
    assert discarded
    assert any("was discarded" in line for line in harbor.workers["s1"].output)

    # 2. A step worker's host is killed for good.
    builds = start_builds(harbor)
    lost = wait_for(lambda: running_on(harbor.workers["s2"], builds), timeout=60)
    harbor.workers["s2"].kill()
    assert_settled_and_sound(harbor, builds, "a step host killed")
    assert BuildTarget.objects.filter(pk__in=lost, attempt__gt=1).count() == len(lost)
    harbor.start_worker("s2", "targets")

    # 3. An engine host is partitioned for 30 s; the other engine host stays up.
    builds = start_builds(harbor)
    harbor.net.cut("e1")
    time.sleep(30)
    harbor.net.restore("e1")
    assert_settled_and_sound(harbor, builds, "an engine host partitioned")

    # 4. 100 ms added to every round trip between a host and PostgreSQL (50 ms each way).
    harbor.db_forwarder.delay = 0.05
    builds = start_builds(harbor)
    assert_settled_and_sound(harbor, builds, "100 ms per database round trip")
    harbor.db_forwarder.delay = 0
