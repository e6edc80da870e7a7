"""The log viewer: a build log as numbered, coloured lines, a window at a time, with a
search, links to a line (``?line=N#LN``) and, while the log is live, a tail that follows.

The download (``builds.views.builds.log_download``) has the whole text.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from builds import log_view
from builds.models import BuildLog
from builds.numbers import ascii_int
from builds.views.common import is_partial, poll_url, sign_in_required

SEARCH_SHOWN = 200  # characters of a search the viewer accepts


def first_line(params) -> int | None:
    """The first line to show from GET ``params``: ``?from=N``, or a little before
    ``?line=N`` so the linked line has some context above it; None for the tail."""
    if (start := ascii_int(params.get("from", ""))) is not None:
        return max(1, start)
    if (line := ascii_int(params.get("line", ""))) is not None:
        return max(1, line - 20)
    return None


@require_safe
@sign_in_required
def log_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A window of ``log_view.WINDOW_LINES`` lines of log ``pk`` (the tail by default,
    ``?from=N`` or ``?line=N``) and, with ``?q=``, the lines holding that text. While the
    log is live and the tail is shown, the tail polls with the log's version (``?v=``) and
    gets an empty 204 while that is unchanged."""
    version = log_view.log_version(pk)
    if is_partial(request) and version and request.GET.get("v") == version:
        return HttpResponse(status=204)
    log = get_object_or_404(BuildLog.objects.select_related("target__build"), pk=pk)
    first = first_line(request.GET)
    query = request.GET.get("q", "").strip()[:SEARCH_SHOWN]
    matches, more = log_view.search(log, query) if query else ([], False)
    context = {
        "log": log,
        "window": log_view.window(log, first),
        "following": log.is_live and first is None,
        "query": query,
        "matches": matches,
        "more_matches": more,
        "poll_url": poll_url(request, version),
    }
    template = "builds/_log_lines.html" if is_partial(request) else "builds/log_detail.html"
    return render(request, template, context)
