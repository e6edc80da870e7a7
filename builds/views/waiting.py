"""The "Waiting" page: every target waiting for a message, across builds, the longest
waiting first. The first place to look when something is stuck."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from builds import queries
from builds.views.common import sign_in_required

WAITING_SHOWN = 500


@require_safe
@sign_in_required
def waiting_list(request: HttpRequest) -> HttpResponse:
    """Waiting targets with their plan, build, step, age, deadline and messages received,
    those past their step's ``stuck_after`` flagged; at most ``WAITING_SHOWN``."""
    targets = list(queries.waiting_targets(WAITING_SHOWN))
    context = {"targets": targets, "shown": WAITING_SHOWN}
    return render(request, "builds/waiting_list.html", context)
