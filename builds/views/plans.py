"""Plan list, plan page, and running a plan by hand."""

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from builds import engine, plan_chart, queries, test_history
from builds.models import BuildPlan, BuildPlanVersion
from builds.permissions import can_change_plans
from builds.plan_versions import current_yaml, mask_yaml, save_plan_version, version_diff
from builds.plans import PlanError
from builds.secrets import mask_config
from builds.templatetags.harbor_ui import masked_items
from builds.variables import parameter_name_problem
from builds.views.access import can_run
from builds.views.builds import build_rows
from builds.views.common import sign_in_required

RECENT_BUILDS = 20


class RunPlanForm(forms.Form):
    """What to build: the buildable's repository, ref and commit, and build parameters as
    ``NAME=VALUE`` lines (``${build.param.NAME}`` in the plan)."""

    repository = forms.CharField(
        max_length=500, required=False, help_text="Repository URI, e.g. https://…/repo.git"
    )
    ref = forms.CharField(max_length=255, required=False, help_text="Branch or tag, e.g. main")
    commit = forms.CharField(max_length=64, required=False, help_text="Commit hash (optional)")
    parameters = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One NAME=VALUE per line.",
    )

    def clean_parameters(self) -> dict[str, str]:
        """``NAME=VALUE`` lines as a dict; blank lines are skipped. Names follow the REST
        API's rule (``variables.parameter_name_problem``)."""
        parameters = {}
        for number, line in enumerate(self.cleaned_data["parameters"].splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise forms.ValidationError(f"Line {number} is not NAME=VALUE.")
            parameters[name.strip()] = value.strip()
        problem = parameter_name_problem(parameters)
        if problem:
            raise forms.ValidationError(problem)
        return parameters


class PlanUploadForm(forms.Form):
    """A new version of the plan: its whole YAML, as ``manage.py importplan`` reads it."""

    yaml = forms.CharField(
        label="Plan YAML",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false"}),
        help_text="The whole plan; it must keep the plan's name. Checked before anything is saved.",
    )


@require_safe
@sign_in_required
def plan_list(request: HttpRequest) -> HttpResponse:
    """Every plan with its number of steps and builds."""
    return render(request, "builds/plan_list.html", {"plans": queries.plans_for_display()})


def plan_page(
    request: HttpRequest,
    plan: BuildPlan,
    form: RunPlanForm,
    status: int = 200,
    upload: PlanUploadForm | None = None,
):
    """Render the plan page: steps in dependency order with their settings (masked), a
    chart of the last builds, the recent builds, the run form, the plan's versions, and the
    upload form for those allowed."""
    steps = queries.in_dependency_order(
        plan.steps.all(), key=lambda s: s.key, depends_on=lambda s: s.depends_on
    )
    for step in steps:
        step.settings = masked_items(mask_config(step.config or {}))
    builds = list(queries.builds_for_display(plan.builds.all())[: plan_chart.CHART_BUILDS])
    rows = build_rows(builds)
    may_change = can_change_plans(request.user)
    if may_change and upload is None:
        upload = PlanUploadForm(initial={"yaml": current_yaml(plan)})
    context = {
        "plan": plan,
        "steps": steps,
        "rows": rows[:RECENT_BUILDS],
        "chart": plan_chart.chart(builds, [row.status for row in rows]),
        "flakiest": test_history.flakiest(plan.id),
        "slowest": test_history.slowest(plan.id),
        "recent": RECENT_BUILDS,
        "form": form,
        "may_run": plan.status == BuildPlan.Status.ACTIVE and can_run(request.user, plan),
        "versions": plan.versions.select_related("author").order_by("-number"),
        "may_change": may_change,
        "upload": upload if may_change else None,
    }
    return render(request, "builds/plan_detail.html", context, status=status)


@require_safe
@sign_in_required
def plan_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A plan: its steps in dependency order, its recent builds, and a form to run it."""
    plan = get_object_or_404(queries.plan_with_steps(pk))
    return plan_page(request, plan, RunPlanForm())


@require_http_methods(["POST"])
@sign_in_required
def plan_run(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a build of plan ``pk`` for the buildable the form names, initiated by the
    signed-in user, and go to its page. 403 for users who may not run the plan; the form
    comes back with its errors (400) when invalid or when the plan is disabled."""
    plan = get_object_or_404(queries.plan_with_steps(pk))
    if not can_run(request.user, plan):
        raise PermissionDenied("You may not run this plan.")
    form = RunPlanForm(request.POST)
    if not form.is_valid():
        return plan_page(request, plan, form, status=400)
    data = form.cleaned_data
    try:
        # One transaction, so a build that cannot start leaves no new buildable behind.
        with transaction.atomic():
            buildable = engine.find_or_create_buildable(
                data["repository"], ref=data["ref"], commit=data["commit"]
            )
            build = engine.start_build(
                plan, buildable, initiator=request.user, parameters=data["parameters"]
            )
    except engine.PlanNotRunnable as refused:
        form.add_error(None, str(refused))
        return plan_page(request, plan, form, status=400)
    return redirect(build.get_absolute_url())


@require_http_methods(["POST"])
@sign_in_required
def plan_upload(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the posted YAML as the plan's next version, by the signed-in user, and go to
    that version's page. 403 for users who may not change plans; the plan page comes back
    with every problem (400) when the YAML is refused, and nothing is saved."""
    plan = get_object_or_404(BuildPlan, pk=pk)
    if not can_change_plans(request.user):
        raise PermissionDenied("You may not change build plans.")
    upload = PlanUploadForm(request.POST)
    if upload.is_valid():
        try:
            plan, version = save_plan_version(
                upload.cleaned_data["yaml"], author=request.user, plan=plan
            )
        except PlanError as refused:
            for problem in refused.problems:
                upload.add_error("yaml", problem)
        else:
            return redirect(version.get_absolute_url())
    plan = get_object_or_404(queries.plan_with_steps(pk))
    return plan_page(request, plan, RunPlanForm(), status=400, upload=upload)


@require_safe
@sign_in_required
def plan_version(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    """One version of a plan: its YAML (secrets masked), who saved it and when, and the diff
    from the version before it, or from the one ``?against=N`` names."""
    version = get_object_or_404(
        BuildPlanVersion.objects.select_related("plan", "author"), plan_id=pk, number=number
    )
    versions = list(version.plan.versions.select_related("author").order_by("-number"))
    against = _against(request, version, versions)
    context = {
        "plan": version.plan,
        "version": version,
        "versions": versions,
        "against": against,
        "yaml": mask_yaml(version.yaml),
        "diff": version_diff(against, version),
        "build_count": version.builds.count(),
    }
    return render(request, "builds/plan_version.html", context)


def _against(request: HttpRequest, version: BuildPlanVersion, versions: list[BuildPlanVersion]):
    """The version to diff ``version`` against: ``?against=N`` if the plan has it, else
    the one before ``version`` (None for the first)."""
    by_number = {v.number: v for v in versions}
    asked = request.GET.get("against", "")
    if asked.isdigit() and int(asked) in by_number:
        return by_number[int(asked)]
    return max(
        (v for v in versions if v.number < version.number), key=lambda v: v.number, default=None
    )


@require_safe
@sign_in_required
def test_detail(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    """One unit test (``key``, ``test_history.key_of``) of plan ``pk``: its last results
    across the plan's builds, newest first. 404 when the plan never ran it."""
    plan = get_object_or_404(BuildPlan, pk=pk)
    results = test_history.history(plan.id, key)
    if not results:
        raise Http404("This plan has no results of that test.")
    passed = sum(1 for unit in results if unit.result == "pass")
    context = {"plan": plan, "results": results, "test": results[0], "passed": passed}
    return render(request, "builds/test_detail.html", context)
