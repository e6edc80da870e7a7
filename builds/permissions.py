"""Who may run a build plan and send messages to its builds and targets (README
"Permissions"). The one place these rules live: the engine's ``receive_message`` and the
API's build start call it, and so does the web UI.

The model, as simple as it can be:

- Staff may do anything.
- A plan whose ``run_group`` is empty may be run, and its builds and targets sent messages,
  by every signed-in, active user. A plan with a ``run_group`` only by that group's members.
- Whoever presents a target's callback secret (``builds.secrets.TargetSecretHolder``) may
  send messages to that one target, and do nothing else.
- An approval step's decision (approve or decline) is a person's: staff, and the members of
  the step's ``approvers`` group (every active user when it names none), on top of the
  right to message the build; never Harbor itself nor a target's secret.
- ``None`` is Harbor itself (``manage.py`` commands, the engine's own callers, tests that
  drive the engine): it may do anything. The REST API always passes the authenticated
  principal, never None.

Reading (``GET``) is open to every signed-in user, as Harbormaster requires only view
access to the receiver (docs/harbormaster.md §2.2); a run group decides who may act, not who may
look. Harbormaster asks only for view access to send a message; Harbor asks for the right to run
the plan, so no one outside a plan's group can forge its verdict.
"""

from typing import Any

from django.conf import settings

from builds.models import Build, BuildPlan, BuildTarget
from builds.secrets import TargetSecretHolder


class NotPermitted(PermissionError):
    """The principal may not do this; the REST API answers 403 ``permission_denied``."""


def can_run(user: Any, plan: BuildPlan) -> bool:
    """Whether ``user`` (a User, a TargetSecretHolder, or None for Harbor itself) may start
    builds of ``plan`` and send messages to its builds and targets. One query when the plan
    has a run group and the user is not staff; none otherwise."""
    decided = _decided_without_groups(user)
    if decided is not None:
        return decided
    return plan.run_group_id is None or user.groups.filter(pk=plan.run_group_id).exists()


def can_change_plans(user: Any) -> bool:
    """Whether ``user`` may create and change build plans (the REST API's ``/plans`` and the
    plan page's upload): staff, and the members of the group named by
    ``HARBOR_PLAN_ADMINS``. One query for a signed-in user who is not staff when the
    setting names a group; none otherwise."""
    decided = _decided_without_groups(user)
    if decided is not None:
        return decided
    group = settings.HARBOR_PLAN_ADMINS
    return bool(group) and user.groups.filter(name=group).exists()


def _decided_without_groups(user: Any) -> bool | None:
    """True for Harbor itself (None) and active staff; False for a target's secret and a
    user signed out or inactive; None for an active user outside staff, whom a group
    decides."""
    if user is None:
        return True
    if isinstance(user, TargetSecretHolder):
        return False
    if not (user.is_authenticated and user.is_active):
        return False
    return True if user.is_staff else None


def can_decide(user: Any, config: dict) -> bool:
    """Whether ``user`` may approve or decline an approval whose step has ``config``: an
    active person who is staff, or a member of the group named by ``approvers`` (anyone
    when it names none). Callers also check ``can_message`` on the build. One query when
    the step names approvers and the user is not staff; none otherwise."""
    if user is None:
        return False  # an approval is a person's decision: Harbor itself makes none
    decided = _decided_without_groups(user)
    if decided is not None:
        return decided
    group = config.get("approvers")
    return not group or user.groups.filter(name=group).exists()


def check_can_decide(user: Any, config: dict) -> None:
    """Raise NotPermitted unless ``user`` may decide an approval with step ``config``."""
    if can_decide(user, config):
        return
    group = config.get("approvers")
    who = f"staff and members of the group {group!r}" if group else "people signed in"
    raise NotPermitted(f"Only {who} may decide this approval.")


def check_can_change_plans(user: Any) -> None:
    """Raise NotPermitted unless ``user`` may change build plans."""
    if can_change_plans(user):
        return
    group = settings.HARBOR_PLAN_ADMINS
    who = f'members of group "{group}" and staff' if group else "staff"
    raise NotPermitted(f"You may not change build plans: only {who} may.")


def can_message(author: Any, build: Build, target: BuildTarget | None = None) -> bool:
    """Whether ``author`` may send a message to ``target`` of ``build`` (a verdict), or to
    ``build`` itself when ``target`` is None (a command). A target secret holder may message
    only the target whose secret it holds."""
    if isinstance(author, TargetSecretHolder):
        return target is not None and author.holds_secret_of(target.phid)
    return can_run(author, build.plan)


def check_can_run(user: Any, plan: BuildPlan) -> None:
    """Raise NotPermitted unless ``user`` may run ``plan``."""
    if not can_run(user, plan):
        raise NotPermitted(_refusal(user, plan, f'run build plan "{plan.name}"'))


def check_can_message(author: Any, build: Build, target: BuildTarget | None = None) -> None:
    """Raise NotPermitted unless ``author`` may message ``target`` (or ``build``)."""
    if can_message(author, build, target):
        return
    if isinstance(author, TargetSecretHolder):
        raise NotPermitted(
            "A target secret only lets its holder send messages to its own build target, "
            "and this secret is not the receiver's."
        )
    raise NotPermitted(
        _refusal(author, build.plan, f'send messages to builds of plan "{build.plan.name}"')
    )


def _refusal(user: Any, plan: BuildPlan, action: str) -> str:
    if isinstance(user, TargetSecretHolder):
        return f"A target secret can not {action}; use an API token."
    if plan.run_group_id is None or not getattr(user, "is_active", False):
        return f"You may not {action}: your account is not active."
    return f'You may not {action}: only members of group "{plan.run_group.name}" (and staff) may.'
