"""Benchmark settings: Harbor's own, plus the ceiling app and its URL (bench/perf.py).

Harbor's production settings never install ``bench.ceilings``. The ceiling tasks run on the
engine queue, in the same worker process as Harbor's ``update_build``, so both are measured
under the same conditions.
"""

from harbor.settings import *  # noqa: F403
from harbor.settings import CELERY_TASK_ROUTES, HARBOR_QUEUE_PREFIX, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench.ceilings"]
ROOT_URLCONF = "bench.urls"
CELERY_TASK_ROUTES = {
    **CELERY_TASK_ROUTES,
    "bench.ceilings.tasks.lock_and_update": {"queue": f"{HARBOR_QUEUE_PREFIX}.engine"},
    "bench.ceilings.tasks.empty": {"queue": f"{HARBOR_QUEUE_PREFIX}.engine"},
}
