"""Update requests are coalesced per build (builds.locks, "queued" mark), on real Redis.

Commits call ``request_update`` after they commit; one ``update_build`` queued and not yet
started serves them all, because it clears the mark before its pass reads anything. The
race itself (a commit while the update is queued is read by that update's pass) is checked
by the interleavings harness and by the stress test with real workers.
"""

import pytest

from builds import locks
from builds.engine import dispatch

pytestmark = pytest.mark.django_db

BUILD_ID = 987_654_321  # no such build: only the Redis marks are involved


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """The update_build tasks queued (recorded instead of sent)."""
    queued: list[int] = []
    monkeypatch.setattr(
        dispatch, "update_build", lambda build_id, countdown=0: queued.append(build_id)
    )
    locks.clear_update_request(BUILD_ID)
    yield queued
    locks.clear_update_request(BUILD_ID)


def test_requests_while_an_update_is_queued_send_no_second_task(sent):
    for _ in range(3):
        dispatch.request_update(BUILD_ID)
    assert sent == [BUILD_ID]
    assert locks.update_request_queued(BUILD_ID)


def test_once_the_update_starts_the_next_request_queues_another(sent):
    dispatch.request_update(BUILD_ID)
    locks.run_exclusively(BUILD_ID, run_pass=lambda build_id: None, schedule_update=print)
    assert not locks.update_request_queued(BUILD_ID)
    dispatch.request_update(BUILD_ID)
    assert sent == [BUILD_ID, BUILD_ID]


def test_a_request_whose_task_could_not_be_sent_leaves_no_mark(monkeypatch):
    def broker_down(build_id, countdown=0):
        raise ConnectionError("broker down")

    monkeypatch.setattr(dispatch, "update_build", broker_down)
    locks.clear_update_request(BUILD_ID)
    with pytest.raises(ConnectionError):
        dispatch.request_update(BUILD_ID)
    assert not locks.update_request_queued(BUILD_ID)


def test_the_mark_expires_with_the_lock_lease(sent, settings):
    dispatch.request_update(BUILD_ID)
    ttl = locks.client().ttl(locks.queued_key(BUILD_ID))
    assert 0 < ttl <= settings.HARBOR_BUILD_LOCK_LEASE


def test_marks_are_kept_apart_per_queue_prefix(sent, settings):
    dispatch.request_update(BUILD_ID)
    settings.HARBOR_QUEUE_PREFIX = "another-harbor"  # another Harbor on the same Redis
    assert not locks.update_request_queued(BUILD_ID)
    dispatch.request_update(BUILD_ID)
    locks.clear_update_request(BUILD_ID)
    assert sent == [BUILD_ID, BUILD_ID]
