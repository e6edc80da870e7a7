"""Every ``build_changed`` send holds the build's row lock (builds/engine/transitions.py), so
the outbox rows its receivers write for one build are numbered in the order of the build's
changes (docs/design.md §6.7). A receiver asks, at send time, from a second PostgreSQL
connection whether the build's row is locked; the rows are committed (transactional tests),
so that connection sees them. Claims and finishes into ``passed`` send nothing and must
not wait for a pass: they are checked against a build row held locked meanwhile."""

from datetime import timedelta

import psycopg2
import psycopg2.errors
import pytest
from django.utils import timezone

from builds import engine
from builds.engine.transitions import build_changed
from builds.models import Build, BuildTarget, StatusEvent
from tests.engine.conftest import waiting_step

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_tasks")]

BUILD_TABLE = Build._meta.db_table


def build_row_locked(other, build_id: int) -> bool | None:
    """Whether another transaction holds build ``build_id``'s row lock: asked for the same
    ``FOR NO KEY UPDATE`` with NOWAIT. None if the row is not visible (not committed)."""
    with other.cursor() as cursor:
        try:
            cursor.execute(
                f"SELECT id FROM {BUILD_TABLE} WHERE id = %s FOR NO KEY UPDATE NOWAIT", [build_id]
            )
        except psycopg2.errors.LockNotAvailable:
            return True
        return False if cursor.fetchone() else None


@pytest.fixture
def sends(other):
    """Each ``build_changed`` sent during the test: (what it announces, whether the build's
    row was locked against another connection at that moment)."""
    seen: list[tuple[str, bool | None]] = []

    def receiver(sender, build, previous=None, target=None, event=None, **kwargs):
        what = event or (f"target {target.status}" if target else f"build {build.status}")
        seen.append((what, build_row_locked(other, build.pk)))

    build_changed.connect(receiver, weak=False, dispatch_uid="test-build-lock-at-send")
    yield seen
    build_changed.disconnect(dispatch_uid="test-build-lock-at-send")


def sent(sends, what: str) -> list[bool | None]:
    return [locked for announced, locked in sends if announced == what]


def test_a_worker_failing_its_target_sends_under_the_build_row_lock(start, sends):
    driver = start([waiting_step("ci")])
    driver.run("ci", error="the step crashed")
    assert driver.target("ci").status == "failed"
    assert sent(sends, "target failed") == [True]


def test_a_worker_letting_its_target_wait_sends_under_the_build_row_lock(start, sends):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    assert sent(sends, "target waiting") == [True]


@pytest.mark.parametrize("why", ["lost too often", "its step retries lost attempts"])
def test_a_claim_that_gives_up_sends_under_the_build_row_lock(start, sends, settings, why):
    settings.HARBOR_TARGET_LEASE = -1  # every claim lapses at once, as if its worker died
    settings.HARBOR_TARGET_MAX_LOST = 0 if why == "lost too often" else 5
    config = {"retry": {"limit": 1, "on": ["lost"]}} if why != "lost too often" else {}
    driver = start([waiting_step("ci", config=config)])
    assert driver.claim("ci").attempt == 1
    assert driver.claim("ci") is None  # the lease lapsed: this claim gives up
    target = driver.target("ci")
    assert (target.status, target.failure) == ("failed", "lost")
    assert sent(sends, "target failed") == [True]


def test_announcing_a_stuck_target_sends_under_the_build_row_lock(start, sends):
    driver = start([waiting_step("ci", config={"stuck_after": 60})])
    driver.run("ci")
    target = driver.target("ci")
    StatusEvent.objects.filter(target=target).update(at=timezone.now() - timedelta(seconds=61))
    assert engine.announce_stuck(target.pk)
    assert sent(sends, "target.stuck") == [True]


def test_every_send_of_a_build_run_holds_its_row_lock(start, sends):
    driver = start([waiting_step("a"), waiting_step("b", depends_on=["a"])])
    driver.run("a")
    driver.send("a", "pass")
    driver.update()
    driver.run("b", error="the step crashed")
    driver.update()
    assert driver.refresh().status == "failed"
    # The start's first pass announces the build: its row is not yet visible to anyone
    # else, so no one can lock it either.
    assert sends[0] == ("build building", None)
    assert [what for what, _ in sends[1:]] == ["target waiting", "target failed", "build failed"]
    assert all(locked for _, locked in sends[1:]), sends


def test_claims_and_passing_finishes_do_not_wait_for_a_pass(start, build_row_held):
    driver = start([{"key": "ci", "step_type": "sleep"}])
    build_row_held(driver.build.pk)
    claim = driver.claim("ci")
    assert claim is not None
    assert engine.finish_target(claim)
    assert BuildTarget.objects.get(pk=claim.target.pk).status == "passed"
