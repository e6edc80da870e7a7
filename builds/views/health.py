"""The health check: the one page reachable without signing in."""

import logging
import time

import redis
from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from builds import locks

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT = 2  # seconds to wait for Redis before calling it down


def check_database() -> str:
    """``ok`` if the database answers ``SELECT 1``, else ``error`` (the cause is logged)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.warning("health check: database unreachable", exc_info=True)
        return "error"
    return "ok"


def check_redis() -> str:
    """``ok`` if Redis at ``settings.REDIS_URL`` answers PING, else ``error`` (logged)."""
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=HEALTH_TIMEOUT, socket_timeout=HEALTH_TIMEOUT
    )
    try:
        client.ping()
    except (redis.RedisError, OSError):
        logger.warning("health check: redis unreachable", exc_info=True)
        return "error"
    finally:
        client.close()
    return "ok"


def check_engine() -> str:
    """``ok``, or ``stalled`` when an engine update has been waiting for longer than
    ``HARBOR_ENGINE_STALL_AFTER`` seconds with no pass of any build under the Redis lock
    finished meanwhile (every engine worker down, or failing its tasks, even while senders
    and finishing workers still pass builds themselves); ``error`` if Redis cannot
    tell."""
    try:
        since = locks.engine_waiting_since()
    except (redis.RedisError, OSError):
        return "error"
    if since is not None and time.time() - since > settings.HARBOR_ENGINE_STALL_AFTER:
        logger.warning("health check: no engine pass finished for %.0f s", time.time() - since)
        return "stalled"
    return "ok"


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """``{"status", "database", "redis", "engine"}``, each ``ok`` or what is wrong
    (``error``, ``stalled``); 503 if any is not ``ok``. Causes go to the log, not the
    response, since anyone may call this."""
    checks = {"database": check_database(), "redis": check_redis(), "engine": check_engine()}
    healthy = all(result == "ok" for result in checks.values())
    body = {"status": "ok" if healthy else "error", **checks}
    return JsonResponse(body, status=200 if healthy else 503)
