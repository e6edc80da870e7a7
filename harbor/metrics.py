"""The ``/metrics`` view: the counters of ``builds/metrics.py``, and gauges of builds and
targets by status counted when scraped, in Prometheus' text format.

Each process counts in its own memory, or, with ``PROMETHEUS_MULTIPROC_DIR`` set before it
starts, in files in that directory, which this view adds up over every process of the host
(gunicorn's workers and Celery's).
"""

import hmac
import logging

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Value
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from builds import metrics as _counters  # noqa: F401  (registers the counters in this process)
from builds.models import Build, BuildTarget

logger = logging.getLogger(__name__)


class StatusGauges(Collector):
    """``harbor_builds`` by every status and ``harbor_targets`` by each underway status
    (pending, building), counted in one query when scraped. Targets that are complete are
    counted by ``harbor_targets_completed_total``; counting them here would read the whole
    table at every scrape, where the underway ones are read from their partial index."""

    def collect(self):
        builds = GaugeMetricFamily("harbor_builds", "Builds by status, now.", labels=["status"])
        targets = GaugeMetricFamily(
            "harbor_targets", "Build targets underway, by status, now.", labels=["status"]
        )
        counts = {("build", s): 0 for s in Build.Status} | {
            ("target", s): 0 for s in BuildTarget.UNDERWAY
        }
        try:
            rows = status_counts()
        except DatabaseError:
            # The counters are still worth serving while the database is away.
            logger.warning("metrics: could not count builds and targets", exc_info=True)
            return []
        counts |= {(kind, status): n for kind, status, n in rows}
        for (kind, status), n in sorted(counts.items()):
            (builds if kind == "build" else targets).add_metric([status], n)
        return [builds, targets]


def status_counts() -> list[tuple[str, str, int]]:
    """``(kind, status, count)`` for builds by status and underway targets by status, in
    one query (two GROUP BYs joined by UNION ALL)."""
    builds = Build.objects.order_by().values_list(Value("build"), "status").annotate(n=Count("pk"))
    targets = (
        BuildTarget.objects.order_by()
        .filter(status__in=BuildTarget.UNDERWAY)
        .values_list(Value("target"), "status")
        .annotate(n=Count("pk"))
    )
    return list(builds.union(targets, all=True))


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry.register(REGISTRY)
    registry.register(StatusGauges())
    return registry


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Every metric in Prometheus' text format, to ``Authorization: Bearer
    <HARBOR_METRICS_TOKEN>``; 401 (JSON error) without it, and 404 when no token is set, so
    an install that chose none exposes nothing."""
    token = settings.HARBOR_METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off: HARBOR_METRICS_TOKEN is not set.")
    sent = request.headers.get("Authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        detail = "Send Authorization: Bearer <HARBOR_METRICS_TOKEN>."
        return JsonResponse({"error": "not_authenticated", "detail": detail}, status=401)
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
