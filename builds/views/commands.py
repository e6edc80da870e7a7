"""Build commands from the web UI: a confirmation page, then one engine call.

The confirmation is a page of its own (not a dialog inside the build page's live region,
which is replaced every 2 s while the build runs). The POST makes exactly one engine call,
``engine.receive_message``; the engine decides whether the command can apply.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from builds import engine
from builds.models import Build
from builds.views.access import can_message
from builds.views.builds import COMMANDS
from builds.views.common import sign_in_required

# What each command does, for the confirmation page (docs/design.md §3.4; docs/harbormaster.md §3).
EFFECTS = {
    "restart": "The unfinished targets of run {run} are aborted and run {next} starts again "
    "from the first step.",
    "pause": "No new targets start while the build is paused; targets already running finish.",
    "resume": "The build continues from where it was paused.",
    "abort": "The unfinished targets of run {run} are aborted and the build ends as aborted.",
}
SENT = {
    "restart": "Restart sent: the build shows “restarting” until Harbor applies it.",
    "pause": "Pause sent: the build shows “pausing” until Harbor applies it.",
    "resume": "Resume sent: the build shows “resuming” until Harbor applies it.",
    "abort": "Abort sent: the build shows “aborting” until Harbor applies it.",
    "rerun": "Rerun of step {step} sent: it runs again once Harbor applies it.",
}


def _build_for_command(request: HttpRequest, pk: int, command: str) -> Build:
    if command not in (*COMMANDS, "rerun"):
        raise Http404(f"There is no command “{command}”.")
    build = get_object_or_404(Build.objects.select_related("plan", "buildable"), pk=pk)
    if not can_message(request.user, build):
        raise PermissionDenied("You may not send commands to this build.")
    return build


@require_http_methods(["GET", "HEAD", "POST"])
@sign_in_required
def build_command(request: HttpRequest, pk: int, command: str) -> HttpResponse:
    """GET: ask to confirm ``command`` for build ``pk`` (saying why not, when it cannot
    apply). POST: send it with ``engine.receive_message`` and go back to the build page
    with what happened (a refusal becomes an error message). 403 for users who may not
    send commands to the build, 404 for an unknown command."""
    build = _build_for_command(request, pk, command)
    if request.method == "POST":
        return _send(request, build, command)
    context = {
        "build": build,
        "command": command,
        "title": f"{command.capitalize()} build {build.pk}",
        "action": reverse("build-command", args=[build.pk, command]),
        "effect": EFFECTS[command].format(run=build.generation, next=build.generation + 1),
        "refusal": engine.command_refusal(build, command),
    }
    return render(request, "builds/command_confirm.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@sign_in_required
def step_rerun(request: HttpRequest, pk: int, step: str) -> HttpResponse:
    """GET: ask to confirm rerunning ``step`` of build ``pk`` with the steps depending on
    it, saying why not when it cannot (still running, build paused). POST: send the
    ``rerun`` command. 403 for users who may not send commands to the build, 404 for a step
    the build does not have."""
    build = _build_for_command(request, pk, "rerun")
    keys = [item["key"] for item in build.plan_snapshot]
    if step not in keys:
        raise Http404(f"Build {pk} has no step “{step}”.")
    if request.method == "POST":
        return _send(request, build, "rerun", step)
    again = engine.rerun_dependents(build.plan_snapshot, step)
    context = {
        "build": build,
        "command": "rerun",
        "title": f"Rerun step {step} of build {build.pk}",
        "action": reverse("step-rerun", args=[build.pk, step]),
        "effect": f"These steps run again as new attempts: {', '.join(again)}. The other "
        "steps keep their results; earlier attempts stay on the build page.",
        "refusal": engine.command_refusal(build, "rerun", step),
    }
    return render(request, "builds/command_confirm.html", context)


def _send(
    request: HttpRequest, build: Build, command: str, step: str | None = None
) -> HttpResponse:
    try:
        engine.receive_message(build.phid, command, author=request.user, step_key=step)
    except engine.MessageRefused as refused:
        messages.error(request, refused.detail)
    except PermissionError as refused:  # builds.permissions.NotPermitted, raised by the engine
        messages.error(request, str(refused))
    else:
        messages.success(request, SENT[command].format(step=step))
    return redirect(build.get_absolute_url())
