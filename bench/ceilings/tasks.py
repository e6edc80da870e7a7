"""The ceiling tasks: a decision's least cost, and nothing at all."""

import redis
from celery import shared_task
from django.conf import settings
from django.db import transaction

from bench.ceilings.models import CeilingCounter

_redis: redis.Redis | None = None


def _client() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL)
    return _redis


@shared_task(acks_late=True)
def lock_and_update(counter_id: int) -> None:
    """Take a Redis lock, update counter ``counter_id`` under ``SELECT … FOR UPDATE`` and
    commit: the least a decision costs (the bench's trigger NOTIFYs the commit)."""
    with _client().lock(f"bench:ceiling:{counter_id}", timeout=30):
        with transaction.atomic():
            counter = CeilingCounter.objects.select_for_update().get(pk=counter_id)
            counter.value += 1
            counter.save(update_fields=["value"])


@shared_task(acks_late=True)
def empty(token: int) -> None:
    """Do nothing but push ``token`` to a Redis list, so the bench sees the task ran."""
    _client().rpush("bench:ceiling:empty", token)
