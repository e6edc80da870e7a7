"""Harbor's web UI: server-rendered pages, with htmx polling the live regions.

Views read only: they load rows through ``builds.queries`` and render them. A live region is
a partial template fetched with ``?partial=1``; it carries its ``hx-trigger="every 2s"`` only
while what it shows can still change, so polling stops by itself once the build is complete
(NetBox's pattern). The health check is the one page reachable without signing in.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Page, Paginator
from django.db import Error as DatabaseError
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from builds import queries
from builds.models import Build, Buildable, BuildPlan

logger = logging.getLogger(__name__)

BUILDS_PER_PAGE = 50
RECENT_BUILDS = 20
# Characters of each log a build page shows: it is re-rendered every 2 s while the build runs.
LOG_LIMIT = 100_000
HEALTH_TIMEOUT = 2  # seconds to wait for Redis before calling it down

View = Callable[..., HttpResponse]


def sign_in_required(view: View) -> View:
    """Like ``login_required``, but an htmx request from a signed-out browser (a poll after
    the session expired) gets 401 with ``HX-Redirect``, so htmx loads the sign-in page
    instead of swapping the sign-in form into the live region."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if request.headers.get("HX-Request"):
            return _htmx_sign_in(request)
        return redirect_to_login(request.get_full_path())

    return wrapper


def _htmx_sign_in(request: HttpRequest) -> HttpResponse:
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    page = current.path + (f"?{current.query}" if current.query else "") or "/"
    response = HttpResponse("Sign in again.", status=401, content_type="text/plain")
    response["HX-Redirect"] = redirect_to_login(page).url
    return response


def is_partial(request: HttpRequest) -> bool:
    """Whether the request asks for the live region only (``?partial=1``)."""
    return request.GET.get("partial") == "1"


def poll_url(request: HttpRequest) -> str:
    """The current URL with ``partial=1``: what a live region polls."""
    query = request.GET.copy()
    query["partial"] = "1"
    return f"{request.path}?{query.urlencode()}"


# Health check --------------------------------------------------------------------------------


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


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """``{"status", "database", "redis"}``, each ``ok`` or ``error``; 503 if any failed.
    Causes go to the log, not the response, since anyone may call this."""
    checks = {"database": check_database(), "redis": check_redis()}
    healthy = all(result == "ok" for result in checks.values())
    body = {"status": "ok" if healthy else "error", **checks}
    return JsonResponse(body, status=200 if healthy else 503)


# Builds --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildRow:
    """A build as a list row: the build and the status to show for it."""

    build: Build
    status: str

    @property
    def is_live(self) -> bool:
        return queries.is_live(self.build, self.status)


def build_rows(builds) -> list[BuildRow]:
    """Rows for builds loaded by ``queries.builds_for_display``."""
    return [BuildRow(build, queries.shown_status(build)) for build in builds]


def list_filters(params) -> dict:
    """The build list's filters from GET ``params``; unknown values are ignored."""
    status = params.get("status", "")
    plan = params.get("plan", "")
    return {
        "status": status if status in Build.Status.values else "",
        "plan_id": int(plan) if plan.isdigit() else None,
    }


def page_query(request: HttpRequest) -> str:
    """The current query string without ``page`` and ``partial``, for pagination links."""
    query = request.GET.copy()
    for name in ("page", "partial"):
        query.pop(name, None)
    return query.urlencode()


@sign_in_required
def build_list(request: HttpRequest) -> HttpResponse:
    """Builds newest first, 50 a page, filtered by ``?status=`` and ``?plan=<id>``."""
    filters = list_filters(request.GET)
    builds = queries.filtered_builds(**filters)
    page: Page = Paginator(builds, BUILDS_PER_PAGE).get_page(request.GET.get("page"))
    rows = build_rows(page)
    context = {
        "page": page,
        "rows": rows,
        "live": any(row.is_live for row in rows),
        "poll_url": poll_url(request),
        "page_query": page_query(request),
        "filters": filters,
        "statuses": Build.Status.values,
        "plans": BuildPlan.objects.order_by("name").only("id", "name"),
    }
    template = "builds/_build_table.html" if is_partial(request) else "builds/build_list.html"
    return render(request, template, context)


def build_page_context(build: Build) -> dict:
    """What the build page and its live region show."""
    status = queries.shown_status(build)
    targets = queries.current_targets(build)
    return {
        "build": build,
        "status": status,
        "live": queries.is_live(build, status),
        "steps": queries.steps_with_targets(build, targets),
        "timeline": queries.build_timeline(build),
        "log_limit": LOG_LIMIT,
    }


@sign_in_required
def build_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A build: its status, current targets with what they reported, and its timeline."""
    build = get_object_or_404(queries.builds_for_display(), pk=pk)
    context = {**build_page_context(build), "poll_url": poll_url(request)}
    template = "builds/_build_live.html" if is_partial(request) else "builds/build_detail.html"
    return render(request, template, context)


@sign_in_required
def buildable_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A buildable: what is built, its status, and its builds."""
    buildable = get_object_or_404(Buildable, pk=pk)
    rows = build_rows(queries.buildable_builds(buildable))
    return render(request, "builds/buildable_detail.html", {"buildable": buildable, "rows": rows})


# Plans ---------------------------------------------------------------------------------------


@sign_in_required
def plan_list(request: HttpRequest) -> HttpResponse:
    """Every plan with its number of steps and builds."""
    return render(request, "builds/plan_list.html", {"plans": queries.plans_for_display()})


@sign_in_required
def plan_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A plan: its steps in order and its recent builds."""
    plan = get_object_or_404(queries.plan_with_steps(pk))
    builds = queries.builds_for_display(plan.builds.all())[:RECENT_BUILDS]
    context = {"plan": plan, "rows": build_rows(builds), "recent": RECENT_BUILDS}
    return render(request, "builds/plan_detail.html", context)
