"""Build list, build page (with its runs), buildable page and build log download.

Views read only: they load rows through ``builds.queries`` and render them. A live region is
a partial template fetched with ``?partial=1``; it carries its ``hx-trigger="every 2s"`` only
while what it shows can still change, so polling stops by itself once the build is complete
(NetBox's pattern).
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.text import slugify
from django.views.decorators.http import require_safe

from builds import engine, queries, test_history, unit_results
from builds.engine.concurrency import places_ahead
from builds.models import Build, Buildable, BuildLog, BuildLogChunk, BuildPlan, UnitResult
from builds.numbers import ascii_int
from builds.views.access import can_message
from builds.views.common import is_partial, page_query, poll_url, sign_in_required

BUILDS_PER_PAGE = 50
# Log chunks read from the database at a time while streaming a download.
DOWNLOAD_BATCH = 200
COMMANDS = ("restart", "pause", "resume", "abort")


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
        "plan_id": ascii_int(plan),
        "buildable": params.get("buildable", "").strip()[:200],
        "initiator": params.get("initiator", "").strip()[:150],
    }


@require_safe
@sign_in_required
def build_list(request: HttpRequest) -> HttpResponse:
    """Builds newest first, 50 a page, filtered by ``?status=``, ``?plan=<id>``,
    ``?buildable=<id or text>`` and ``?initiator=<username>``."""
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
        "filtered": any(value not in ("", None) for value in filters.values()),
        "statuses": Build.Status.values,
        "plans": BuildPlan.objects.order_by("name").only("id", "name"),
        "initiators": queries.initiators(),
    }
    template = "builds/_build_table.html" if is_partial(request) else "builds/build_list.html"
    return render(request, template, context)


def allowed_commands(user, build: Build, status: str) -> list[str]:
    """The commands ``user`` may send to ``build`` that can apply now (no button for a
    command the engine would refuse), and none while a command sent earlier still waits."""
    if status != build.status or not can_message(user, build):
        return []
    return [command for command in COMMANDS if engine.command_refusal(build, command) is None]


def lazy(function: Callable[[], object]) -> Callable[[], object]:
    """``function``, called at most once and only when asked: Django's templates call a
    callable context value when they use it, so a live poll that renders one section of the
    build page runs only the queries that section needs."""
    return functools.cache(function)


RERUNNABLE = (Build.Status.BUILDING, Build.Status.PASSED, Build.Status.FAILED)


def may_rerun(user, build: Build) -> bool:
    """Whether the build page offers ``user`` "Rerun this step" links on ``build``'s
    complete steps (the confirmation page says if a rerun cannot apply after all)."""
    return not build.plan.auto_key and build.status in RERUNNABLE and can_message(user, build)


def build_page_context(
    build: Build,
    user,
    generation: int | None = None,
    params: QueryDict | None = None,
) -> dict:
    """What the build page and its live region show, for run ``generation`` (default the
    current one), its unit results narrowed by GET ``params`` (``unit_results.unit_filters``).
    Values that cost queries are ``lazy``, so a poll answering a few sections loads only what
    those need. The unit counts and the external links come from the targets loaded for the
    steps."""
    status = queries.shown_status(build)
    shown = build.generation if generation is None else generation
    targets = lazy(lambda: queries.targets_of_generation(build, shown))
    current = lazy(lambda: [target for target in targets() if not target.superseded_by])
    timeline = lazy(lambda: queries.build_timeline(build))
    return {
        # The unit counts and the links come from the targets the targets section loads:
        # units' parts in LIVE_SECTIONS are all among targets', and head's others (the build's
        # date_modified and events) change only as the engine moves the build's status,
        # which targets shows too; so a poll that renders units or head renders targets as
        # well, and reading these apart would only add queries.
        "units": lazy(lambda: unit_results_context(build, shown, current(), params or QueryDict())),
        "build": build,
        "status": status,
        "live": queries.is_live(build, status),
        "generation": shown,
        "is_current_run": shown == build.generation,
        "runs": range(build.generation, 0, -1),
        "steps": lazy(
            lambda: queries.steps_with_targets(build, targets(), queries.status_since(timeline()))
        ),
        "links": lazy(lambda: queries.external_links(current())),
        "logs": lazy(lambda: queries.logs_of_generation(build, shown)),
        "timeline": timeline,
        "commands": lazy(lambda: allowed_commands(user, build, status)),
        "may_rerun": lazy(lambda: shown == build.generation and may_rerun(user, build)),
        # Target id → places ahead of it in its concurrency group's queue (current
        # attempts only: a superseded attempt is complete, never queued).
        "queue_ahead": lazy(lambda: places_ahead(current())),
    }


def unit_results_context(build: Build, generation: int, targets, params: QueryDict) -> dict:
    """The unit results part of the build page: the run's ``counts`` by result (from its
    ``targets``, annotated with their counts), the ``filters``, one ``page`` of results
    (each with its ``marks`` from the test history: new, known, flaky) and the ``query``
    its links keep."""
    filters = unit_results.unit_filters(params)
    counts = unit_results.run_counts(targets)
    page = unit_results.results_page(build, generation, filters, counts)
    page.object_list = list(page.object_list)
    marks = test_history.marks(build, generation, page.object_list) if page.object_list else {}
    for unit in page.object_list:
        unit.marks = marks.get(unit.id, [])
    query = params.copy()
    for name in ("unit_page", "partial", "v"):
        query.pop(name, None)
    return {
        "counts": counts,
        "total": sum(count for _, count in counts),
        "filters": filters,
        "page": page,
        "query": query.urlencode(),
        "results": unit_results.RESULT_ORDER,
        "name_shown": unit_results.NAME_SHOWN,
        "details_shown": unit_results.DETAILS_SHOWN,
    }


def requested_generation(build: Build, value) -> int | None:
    """The run asked for (``?generation=N`` or ``runs/<n>/``) if the build has it, else
    None (the current run)."""
    generation = ascii_int(str(value or ""))
    if generation is not None and 1 <= generation <= build.generation:
        return generation
    return None


@require_safe
@sign_in_required
def build_detail(request: HttpRequest, pk: int, generation: int | None = None) -> HttpResponse:
    """A build: its status, the targets of one run with what they reported, its runs and
    its timeline. ``generation`` comes from ``runs/<n>/`` (404 if the build has no such run)
    or ``?generation=N``. The live region's poll (``?partial=1``) carries the version of
    each section it shows (``?v=``, ``queries.live_versions``): it gets an empty 204 while
    they are all still the build's, else only the sections that changed."""
    versions = queries.live_versions(pk)
    changed = queries.changed_sections(versions or {}, request.GET.get("v", ""))
    if is_partial(request) and versions is not None and not changed:
        return HttpResponse(status=204)  # nothing changed: htmx swaps nothing
    build = get_object_or_404(queries.builds_for_display(), pk=pk)
    shown = requested_generation(build, generation or request.GET.get("generation"))
    if generation is not None and shown is None:
        raise Http404(f"Build {pk} has no run {generation}.")
    context = {
        **build_page_context(build, request.user, shown, request.GET),
        "poll_url": poll_url(request, queries.encode_versions(versions or {})),
        "changed": changed,
    }
    partial = is_partial(request)
    template = "builds/_build_live_parts.html" if partial else "builds/build_detail.html"
    return render(request, template, context)


@require_safe
@sign_in_required
def unit_result_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One unit result in full: its name, namespace and details however long (the build
    page shows them capped)."""
    unit = get_object_or_404(UnitResult.objects.select_related("target__build"), pk=pk)
    return render(request, "builds/unit_result_detail.html", {"unit": unit})


@require_safe
@sign_in_required
def buildable_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A buildable: what is built, its aggregate status, and its builds."""
    buildable = get_object_or_404(Buildable, pk=pk)
    rows = build_rows(queries.buildable_builds(buildable))
    context = {
        "buildable": buildable,
        "rows": rows,
        "counts": queries.status_counts(row.status for row in rows),
    }
    return render(request, "builds/buildable_detail.html", context)


@require_safe
@sign_in_required
def log_download(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """A build log as a plain-text download, streamed chunk by chunk so a large log never
    sits in memory whole."""
    log = get_object_or_404(BuildLog.objects.select_related("target"), pk=pk)
    chunks = BuildLogChunk.objects.filter(log=log).order_by("id").values_list("text", flat=True)
    response = StreamingHttpResponse(
        chunks.iterator(chunk_size=DOWNLOAD_BATCH), content_type="text/plain; charset=utf-8"
    )
    name = f"build-{log.target.build_id}-{slugify(log.target.step_key)}-log-{log.pk}.txt"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
