"""Worker heartbeats: each Celery worker writes, every ``HARBOR_WORKER_HEARTBEAT`` seconds,
a Redis key saying it is alive and which queues it serves; ``manage.py workerhealth`` reads
them (the compose file's and the systemd examples' health checks).

Key ``<HARBOR_QUEUE_PREFIX>:worker:<worker name>``: JSON ``{"at": seconds since the epoch,
"interval": seconds, "queues": [names], "pid": main process id}``, with a TTL of
``STALE_AFTER`` intervals. The beat is written by a timer of the worker's main process, on
the event loop that also takes tasks from the broker: a worker whose loop is stuck, whose
process died, or that cannot reach Redis (its broker) stops beating, and its key expires.
A worker busy on long steps still beats; it is alive, only full.
"""

import json
import logging
import os
import time
from dataclasses import dataclass

import redis
from celery import bootsteps
from django.conf import settings

from builds import locks

logger = logging.getLogger(__name__)

# Intervals after which a heartbeat that was not renewed counts as stale (and its key
# expires): two beats may be missed (a slow Redis, a long GC pause) before a worker is
# called dead.
STALE_AFTER = 3


@dataclass(frozen=True)
class Heartbeat:
    """One worker's last heartbeat as read back."""

    name: str
    at: float
    interval: float
    queues: tuple[str, ...]

    @property
    def age(self) -> float:
        """Seconds since the beat was written."""
        return max(time.time() - self.at, 0.0)

    @property
    def alive(self) -> bool:
        return self.age <= STALE_AFTER * self.interval


def heartbeat_key(name: str) -> str:
    return f"{settings.HARBOR_QUEUE_PREFIX}:worker:{name}"


def beat(name: str, queues: list[str], interval: float) -> None:
    """Write worker ``name``'s heartbeat now. Redis errors propagate."""
    value = {"at": time.time(), "interval": interval, "queues": queues, "pid": os.getpid()}
    ttl = max(int(STALE_AFTER * interval), 1)
    locks.client().set(heartbeat_key(name), json.dumps(value), ex=ttl)


def heartbeats() -> list[Heartbeat]:
    """Every worker heartbeat still in Redis (those not yet expired), by name. Redis errors
    propagate."""
    r = locks.client()
    keys = sorted(r.scan_iter(match=heartbeat_key("*"), count=1000))
    prefix = heartbeat_key("")
    found = []
    for key, raw in zip(keys, r.mget(keys) if keys else [], strict=True):
        if raw is None:
            continue  # expired between the scan and the read
        value = json.loads(raw)
        name = key.decode().removeprefix(prefix)
        found.append(Heartbeat(name, value["at"], value["interval"], tuple(value["queues"])))
    return found


class HeartbeatStep(bootsteps.StartStopStep):
    """The worker bootstep that writes the heartbeat from the main process's timer (added to
    the app in ``harbor/celery.py``)."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker):
        interval = settings.HARBOR_WORKER_HEARTBEAT
        queues = sorted(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)
        self._beat(worker.hostname, queues, interval)
        self.tref = worker.timer.call_repeatedly(
            interval, self._beat, (worker.hostname, queues, interval), priority=10
        )

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        try:
            # A worker stopping on purpose is gone at once, not after its key expires.
            locks.client().delete(heartbeat_key(worker.hostname))
        except redis.RedisError:
            pass

    @staticmethod
    def _beat(name: str, queues: list[str], interval: float) -> None:
        try:
            beat(name, queues, interval)
        except redis.RedisError:
            # Not fatal: the worker's broker is this Redis and Celery reconnects to it;
            # meanwhile the missing beat is the truth (the worker cannot take tasks).
            logger.warning("worker heartbeat: Redis unreachable", exc_info=True)
