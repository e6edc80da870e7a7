"""Approvals in the web UI: deciding one (a form on the build page and on the approvals
page), and the page listing the approvals the signed-in user may decide.

Deciding is one engine call, ``engine.receive_message`` with the form's fields; the engine
checks who may decide (``builds.permissions.can_decide``) and the fields
(``builds.approvals``) and says why it refuses.
"""

from django.contrib import messages
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from builds import approvals, engine
from builds.models import Build, BuildTarget
from builds.permissions import NotPermitted, can_decide, can_message
from builds.views.common import sign_in_required

DECISIONS = {"approve": "pass", "decline": "fail"}


@require_POST
@sign_in_required
def approval_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve or decline (``decision``) the approval target ``pk`` with the form's values
    of its fields, then go back (``next``, else the build page) saying what happened."""
    target = get_object_or_404(BuildTarget.objects.select_related("build"), pk=pk)
    decision = request.POST.get("decision")
    if decision not in DECISIONS or target.step_type != approvals.APPROVAL:
        messages.error(request, "Choose Approve or Decline on an approval step.")
        return _back(request, target)
    names = [field["name"] for field in target.config.get("fields", [])]
    fields = {name: request.POST.get(name, "") for name in names}
    try:
        engine.receive_message(target.phid, DECISIONS[decision], author=request.user, fields=fields)
    except (engine.MessageRefused, engine.InvalidMessage, NotPermitted) as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"{target.name}: {decision}d.")
    return _back(request, target)


def _back(request: HttpRequest, target: BuildTarget) -> HttpResponse:
    after = request.POST.get("next", "")
    if after and url_has_allowed_host_and_scheme(after, allowed_hosts={request.get_host()}):
        return redirect(after)
    return redirect(target.build.get_absolute_url())


@require_safe
@sign_in_required
def approval_list(request: HttpRequest) -> HttpResponse:
    """Every approval waiting in a building build's current run that the signed-in user may
    decide, oldest first."""
    waiting = (
        BuildTarget.objects.filter(
            step_type=approvals.APPROVAL,
            status=BuildTarget.Status.WAITING,
            superseded_by="",
            build__status=Build.Status.BUILDING,
            generation=F("build__generation"),
        )
        .select_related("build__plan", "build__buildable")
        .order_by("date_created", "id")
    )
    rows = [
        target
        for target in waiting
        if can_message(request.user, target.build) and can_decide(request.user, target.config)
    ]
    return render(request, "builds/approval_list.html", {"approvals": rows})
