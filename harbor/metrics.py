"""The ``/metrics`` view: the counters of ``builds/metrics.py`` in Prometheus' text format.

Each process counts in its own memory, or, with ``PROMETHEUS_MULTIPROC_DIR`` set before it
starts, in files in that directory, which this view adds up over every process of the host
(gunicorn's workers and Celery's).
"""

import hmac

from django.conf import settings
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

from builds import metrics as _counters  # noqa: F401  (registers the counters in this process)


def _registry() -> CollectorRegistry:
    if not settings.PROMETHEUS_MULTIPROC_DIR:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
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
