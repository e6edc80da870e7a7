"""Plan list, plan page, and running a plan by hand."""

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from builds import engine, plan_chart, queries, test_history
from builds.models import BuildPlan
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


@require_safe
@sign_in_required
def plan_list(request: HttpRequest) -> HttpResponse:
    """Every plan with its number of steps and builds."""
    return render(request, "builds/plan_list.html", {"plans": queries.plans_for_display()})


def plan_page(request: HttpRequest, plan: BuildPlan, form: RunPlanForm, status: int = 200):
    """Render the plan page: steps in dependency order, a chart of the last builds, the
    recent builds, the run form."""
    steps = queries.in_dependency_order(
        plan.steps.all(), key=lambda s: s.key, depends_on=lambda s: s.depends_on
    )
    builds = list(queries.builds_for_display(plan.builds.all())[: plan_chart.CHART_BUILDS])
    rows = build_rows(builds)
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
