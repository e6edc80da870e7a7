"""Race tests: real Celery worker processes, real Redis, the real test database, and the
REST API served by a live server, with outside systems played by local HTTP servers."""

import threading
import time

import pytest
import requests
from django.conf import settings

from builds import engine, locks
from builds.models import Build, BuildTarget
from tests.conftest import make_plan
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]


class Sender:
    """Sends messages to Harbor over REST, as an outside system would."""

    def __init__(self, base_url: str, token: str):
        self.url = f"{base_url}/api/v1/sendmessage"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.lock = threading.Lock()

    def send(self, receiver: str, message_type: str, **fields) -> dict:
        response = self.post(receiver, message_type, **fields)
        assert response.status_code in (200, 202), response.text
        return response.json()

    def post(self, receiver: str, message_type: str, **fields) -> requests.Response:
        """POST the message and return the response, whatever its status."""
        return requests.post(
            self.url,
            json={"receiver": receiver, "type": message_type, **fields},
            headers=self.session.headers,
            timeout=30,
        )


@pytest.fixture
def sender(live_server, api_token) -> Sender:
    return Sender(live_server.url, api_token)


def start_builds(plan_steps: list[dict], count: int, buildable) -> list[Build]:
    plan = make_plan(f"race-{count}-{id(plan_steps)}", plan_steps)
    return [engine.start_build(plan, buildable) for _ in range(count)]


def wait_until_complete(builds: list[Build], timeout: float = 60) -> dict[int, str]:
    """Wait until every build is complete; return {build id: status}."""
    ids = [b.pk for b in builds]

    def all_complete():
        statuses = dict(Build.objects.filter(pk__in=ids).values_list("pk", "status"))
        return statuses if all(s in Build.COMPLETE for s in statuses.values()) else None

    return wait_for(all_complete, timeout=timeout, message="builds did not complete")


def wait_for_targets(build: Build, count: int, status: str | None = None) -> list[BuildTarget]:
    def found():
        targets = BuildTarget.objects.filter(build=build).order_by("step_key")
        if status:
            targets = targets.filter(status=status)
        targets = list(targets)
        return targets if len(targets) == count else None

    return wait_for(found, message=f"build {build.pk} never had {count} {status or ''} targets")


@pytest.fixture
def monitored(transactional_db):
    """The invariant monitor (tests/interleavings/monitor.py) for a test whose rows are
    committed: installed for the test, dropped afterwards even if the test fails."""
    from tests.interleavings import monitor

    monitor.install()
    yield
    monitor.uninstall()


def drain_engine_queue(timeout: float = 60) -> None:
    """Wait until the engine queue is empty and its last task has had a moment to end: a
    test that queued updates faster than the workers run them must not leave them to run
    into the database's teardown (its TRUNCATE deadlocks with a pass)."""
    r = locks.client()
    queue = f"{settings.HARBOR_QUEUE_PREFIX}.engine"

    def empty() -> bool:  # one list per priority
        keys = [k for k in r.scan_iter(match=f"{queue}*") if r.type(k) == b"list"]
        return not sum(r.llen(k) for k in keys)

    wait_for(empty, timeout=timeout, message="the engine queue did not drain")
    time.sleep(1)


def complete_while(race, builds: list[Build], timeout: float = 120) -> dict[int, str]:
    """Wait until every build is complete while ``race(done)`` runs in a thread (until the
    event ``done`` is set); then drain the engine queue the race filled. {build id: status}."""
    done = threading.Event()
    racer = threading.Thread(target=race, args=(done,), daemon=True)
    racer.start()
    try:
        return wait_until_complete(builds, timeout=timeout)
    finally:
        done.set()
        racer.join(10)
        drain_engine_queue()
