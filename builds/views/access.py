"""Who may send commands to a build and run a plan, as the UI asks it.

``builds.permissions`` (written alongside the UI) is the authority when it exists; until then
the rule of ``BuildPlan.run_group`` applies here: staff always, and every signed-in user
unless the plan names a group, whose members then may.
"""

from builds.models import Build, BuildPlan

try:  # pragma: no cover - which branch runs depends on whether the module has landed
    from builds import permissions as _permissions
except ImportError:  # pragma: no cover
    _permissions = None


def _in_run_group(user, plan: BuildPlan) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff or plan.run_group_id is None:
        return True
    return user.groups.filter(pk=plan.run_group_id).exists()


def can_message(user, build: Build) -> bool:
    """Whether ``user`` may send commands (restart, pause, resume, abort) to ``build``."""
    check = getattr(_permissions, "can_message", None)
    return check(user, build) if check else _in_run_group(user, build.plan)


def can_run(user, plan: BuildPlan) -> bool:
    """Whether ``user`` may start a build of ``plan`` by hand."""
    check = getattr(_permissions, "can_run", None) or getattr(_permissions, "can_run_plan", None)
    return check(user, plan) if check else _in_run_group(user, plan)
