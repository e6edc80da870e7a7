"""The per-build Redis lock and dirty mark: the only code that touches them
(docs/design.md §3.6–3.7).

The lock is for efficiency, not correctness (the build row lock in PostgreSQL gives that):
it keeps one worker running a build's passes while the others hand their update to it. A
pass that takes the build's row ``NOWAIT`` queues behind no one and skips it while the row
is free (a message's sender, a finishing worker: ``builds.engine.updates``).

- Key ``harbor:build:<id>``: a random token with a lease (``HARBOR_BUILD_LOCK_LEASE``
  seconds); its release is an atomic token check, so a holder whose lease expired cannot
  release someone else's lock.
- Key ``harbor:build:<id>:dirty`` (no TTL): "this build needs another pass". A caller that
  finds the lock busy sets it in the same atomic step (a Lua script) as its try; the holder
  clears it in the step that takes the lock, before the pass reads anything, and looks at
  it in the step that releases the lock. Two round trips to Redis a pass.
- Key ``harbor:build:<id>:fallback:<token>``: set (with the lease as TTL) by the first
  caller that finds the lock busy, which also schedules one delayed update for when that
  lease would expire, so a holder that dies cannot strand the mark, and a busy build does not
  pile up delayed tasks.
- Key ``harbor:build:<id>:queued`` (the lease as TTL): "an ``update_build`` is queued and
  has not started". Whoever commits work for the build queues an update only if it set this
  key (``claim_update_request``); the update clears it before its pass reads anything, so
  work committed while the key stood is read by that pass. A busy build thus costs one
  queued task, not one per message. A task lost with the key set delays nothing longer
  than the lease (then the next commit queues again) or the repair task's bound.

- Key ``harbor:target:<id>:queued`` (TTL ``TARGET_MARK_TTL`` past its due time): "a
  ``run_target`` for this target is queued and no worker has started it"; its value is
  when the task is due (seconds since the epoch: later than now for a postponed step).
  Set before the task is published; the worker that starts the task shortens it to the
  repair bound while it claims the target (a claim waits on row locks, seconds under load,
  and a pending target with no mark would look lost), then clears it. The repair task
  re-queues a target only when it has no mark, or its mark is overdue by the repair bound
  while the targets queue is empty: a task waiting its turn in a busy queue is never
  duplicated, so repair cannot feed a backlog. Without the queue check, a mark whose task
  was lost (the publisher died between mark and publish, or a worker holding a postponed
  task died) would be trusted until it expires.
- Key ``harbor:engine:waiting_since`` (no TTL): when an update was first requested since
  the engine last finished a pass of any build under this lock (seconds since the epoch).
  Set with the queued mark, cleared after every such pass and by a repair run that found no
  build with work left behind (so a request whose task was lost with nothing to do cannot
  leave it); ``/healthz`` calls the engine stalled when it is older than
  ``HARBOR_ENGINE_STALL_AFTER``, as when every worker fails its tasks. The passes that skip
  this lock (a sender's, a finishing worker's, with the build's row free) leave the key
  alone: they pass on their own, and would hide that no engine worker takes its queue.

Keys start with ``HARBOR_QUEUE_PREFIX`` (``harbor:build:<id>`` by default), which a Harbor's
web and workers must share anyway for its tasks to reach its workers, so Harbors sharing a
Redis database (test runs do) keep apart.

What the queued mark cannot cover: a publish that fails after the mark was set (the broker
is down) clears the mark, but a commit that saw the mark meanwhile has no task behind it; so
has every commit within the lease if the process dies between setting the mark and
publishing. Both are lost updates, found by the repair task (``HARBOR_REPAIR_BOUND``) like
any task the broker loses.
"""

import os
import time
import uuid
from collections.abc import Callable

import redis
from django.conf import settings
from redis.commands.core import Script

# Upper bound on passes one holder runs back to back before handing over to a new task.
MAX_ROUNDS = 50

_client: redis.Redis | None = None
_client_pid: int | None = None


def client() -> redis.Redis:
    """This process's Redis client (recreated after a fork, so pool sockets are never shared)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(settings.REDIS_URL)
        _client_pid = os.getpid()
    return _client


def lock_key(build_id: int) -> str:
    return f"{settings.HARBOR_QUEUE_PREFIX}:build:{build_id}"


def dirty_key(build_id: int) -> str:
    return f"{lock_key(build_id)}:dirty"


def queued_key(build_id: int) -> str:
    return f"{lock_key(build_id)}:queued"


# Seconds a target's queued mark outlives its due time. The Redis transport hands an
# unacknowledged task back after its visibility timeout (an hour by default), so a task
# older than this may be lost even in a queue that never empties.
TARGET_MARK_TTL = 3600


def target_queued_key(target_id: int) -> str:
    return f"{settings.HARBOR_QUEUE_PREFIX}:target:{target_id}:queued"


def mark_targets_queued(target_ids: list[int], countdown: float = 0) -> None:
    """Mark each target as having a ``run_target`` queued, due in ``countdown`` seconds.
    Call it before publishing the tasks. Redis errors propagate."""
    due = time.time() + countdown
    pipe = client().pipeline(transaction=False)
    for target_id in target_ids:
        pipe.set(target_queued_key(target_id), due, ex=int(countdown) + TARGET_MARK_TTL)
    pipe.execute()


def clear_target_queued(target_ids: list[int]) -> None:
    """Clear the targets' queued marks: a worker started their task, or publishing it
    failed. Redis errors propagate."""
    if target_ids:
        client().delete(*(target_queued_key(t) for t in target_ids))


def take_target_queued(target_id: int, hold_seconds: float) -> float | None:
    """A worker started the target's task: replace its queued mark by one due now that
    lives ``hold_seconds`` (cover the claim; clear it with ``clear_target_queued`` once the
    claim is settled), and return when the task was due (seconds since the epoch), or None
    if it had no mark. Redis errors propagate."""
    key = target_queued_key(target_id)
    hold = max(int(hold_seconds), 1)
    due, _ = client().pipeline(transaction=False).get(key).set(key, time.time(), ex=hold).execute()
    return float(due) if due is not None else None


def targets_queued_due(target_ids: list[int]) -> dict[int, float]:
    """``{target id: when its queued task is due}`` for the targets that have a queued
    mark (seconds since the epoch). Redis errors propagate."""
    if not target_ids:
        return {}
    values = client().mget([target_queued_key(t) for t in target_ids])
    return {t: float(v) for t, v in zip(target_ids, values, strict=True) if v is not None}


def engine_waiting_key() -> str:
    return f"{settings.HARBOR_QUEUE_PREFIX}:engine:waiting_since"


def claim_update_request(build_id: int) -> bool:
    """True if the caller should queue an ``update_build`` for build ``build_id``: none is
    queued and not yet started. Call it only after the work to be read has committed.
    Also notes when the engine started having work (``engine_waiting_since``). Redis errors
    propagate."""
    pipe = client().pipeline(transaction=False)
    pipe.set(queued_key(build_id), 1, nx=True, ex=settings.HARBOR_BUILD_LOCK_LEASE)
    pipe.set(engine_waiting_key(), time.time(), nx=True)
    claimed, _ = pipe.execute()
    return bool(claimed)


def clear_engine_waiting() -> None:
    """Clear ``engine_waiting_since``: the engine has no work waiting that it can see."""
    client().delete(engine_waiting_key())


def engine_waiting_since() -> float | None:
    """Seconds since the epoch at which an update was first requested since the engine last
    finished a pass, or None if none is waiting. Redis errors propagate."""
    value = client().get(engine_waiting_key())
    return float(value) if value is not None else None


def clear_update_request(build_id: int) -> None:
    """Clear the queued mark: an update is starting, or queueing one failed."""
    client().delete(queued_key(build_id))


def update_request_queued(build_id: int) -> bool:
    """Whether the queued mark stands (for tests and diagnostics)."""
    return bool(client().exists(queued_key(build_id)))


# The lock and the dirty mark change together in one script each, run atomically by Redis:
# a caller's mark is set in the same step as its failed try for the lock, and a holder's
# look at the mark is the same step as its release, so no mark can fall between a holder's
# last look and its release, whatever the timing. Two round trips to Redis a pass.
_ENTER = """
if ARGV[3] == '1' then redis.call('DEL', KEYS[3]) end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return {1}
end
redis.call('SET', KEYS[2], 1)
return {0, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
"""
_LEAVE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('DEL', KEYS[3])
return redis.call('EXISTS', KEYS[2])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_scripts: dict[str, Script] = {}


def _run(r: redis.Redis, source: str, keys: list[str], args: list) -> object:
    """Run the Lua ``source`` on ``r`` (by EVALSHA; redis-py loads it again if Redis lost
    it, after a restart say). Redis errors propagate."""
    script = _scripts.get(source) or _scripts.setdefault(source, r.register_script(source))
    try:
        return script(keys=keys, args=args, client=r)
    except redis.exceptions.NoScriptError:
        # Lost again between redis-py's reload and its second EVALSHA (another SCRIPT FLUSH):
        # send the source itself. A NoScriptError is no outage error, so the task would not
        # retry, and a finishing worker's pass would be left to the repair task.
        return r.eval(source, len(keys), *keys, *args)


def run_exclusively(
    build_id: int,
    run_pass: Callable[[int], object],
    schedule_update: Callable[[float], None],
    *,
    first_pass: Callable[[int], object] | None = None,
    if_busy: Callable[[], object] | None = None,
    clear_queued: bool = True,
) -> bool:
    """Clear build ``build_id``'s queued mark (see ``clear_queued``), mark it dirty and, if
    its lock is free, run ``run_pass(build_id)`` until the dirty mark stays clear. Returns
    True if this call ran the passes.

    ``first_pass``, with ``if_busy``, is for a caller whose first pass carries a write of
    its own (a finishing worker's finish): it runs instead of ``run_pass`` if the lock is
    free at once. If the lock is busy then, ``if_busy()`` must commit that write alone; the
    build is marked dirty again only after it, since the holder cannot read it before.

    The first round clears the build's queued mark, as an ``update_build`` task starting
    must; ``clear_queued=False`` keeps it, for a caller that is no queued update (a sender
    whose own pass was refused the build's row): the update the mark stands for has not
    started, so it reads this caller's work, and a caller refused the row again finds the
    mark and queues no second one.

    If the lock is busy, the mark is left for the holder and ``schedule_update(seconds)`` is
    called at most once per lease, for when the lease would expire. Redis errors propagate
    (the caller retries); an exception from a pass releases the lock and propagates.
    """
    r = client()
    lease_ms = int(settings.HARBOR_BUILD_LOCK_LEASE * 1000)
    next_pass = first_pass or run_pass
    for round_number in range(MAX_ROUNDS):
        token = uuid.uuid4().hex
        # The first round clears the queued mark first: a commit from now on may queue its
        # own update. Taking the lock clears the dirty mark before the pass reads anything;
        # failing to take it sets the mark for the holder.
        clears = "1" if round_number == 0 and clear_queued else "0"
        keys = [lock_key(build_id), dirty_key(build_id), queued_key(build_id)]
        entered = _run(r, _ENTER, keys, [token, lease_ms, clears])
        if not entered[0] and if_busy is not None:
            # The mark just set may be read, and cleared, by the holder's pass before the
            # write commits: commit it, then try again, which marks the build again.
            if_busy()
            if_busy, next_pass = None, run_pass
            entered = _run(r, _ENTER, keys, [token, lease_ms, "0"])
        if not entered[0]:
            _schedule_fallback(r, build_id, entered[1], entered[2], schedule_update)
            return False
        try:
            next_pass(build_id)
        except BaseException:
            _release(r, build_id, token)
            raise
        if_busy, next_pass = None, run_pass
        # The engine finished a pass: whatever waited for it is no longer a sign of a stall.
        if not _leave(r, build_id, token):
            return True
    schedule_update(0)
    return True


def _leave(r: redis.Redis, build_id: int, token: str) -> bool:
    """Release the lock if this token still holds it (a holder whose lease expired must not
    release someone else's lock; its pass was still safe, the build row lock serialised
    it), clear the engine's waiting mark, and say whether the build is dirty again."""
    keys = [lock_key(build_id), dirty_key(build_id), engine_waiting_key()]
    return bool(_run(r, _LEAVE, keys, [token]))


def _release(r: redis.Redis, build_id: int, token: str) -> None:
    """Release the lock if this token still holds it, after a pass that raised."""
    _run(r, _RELEASE, [lock_key(build_id)], [token])


def _schedule_fallback(
    r: redis.Redis, build_id: int, token: bytes, ttl_ms: int, schedule_update
) -> None:
    """Schedule the busy lock's fallback update once per lease (``token`` is the holder's,
    ``ttl_ms`` what is left of its lease)."""
    lease = settings.HARBOR_BUILD_LOCK_LEASE
    delay = ttl_ms / 1000 if ttl_ms and ttl_ms > 0 else lease
    fallback = f"{lock_key(build_id)}:fallback:{token.decode(errors='replace')}"
    if r.set(fallback, 1, nx=True, ex=lease + 1):
        schedule_update(delay + 0.5)
