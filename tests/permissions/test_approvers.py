"""Who may decide an approval (``permissions.can_decide``): a person, active, who is staff
or in the step's ``approvers`` group (anyone when it names none); never Harbor itself nor
a target's secret. The engine's refusals are in tests/engine/test_approvals.py."""

import pytest

from builds import permissions
from builds.secrets import TargetSecretHolder

APPROVERS = {"approvers": "releasers"}


@pytest.mark.parametrize(
    ("who", "decides"), [("member", True), ("staff", True), ("outsider", False)]
)
def test_staff_and_the_approvers_decide(request, who, decides):
    assert permissions.can_decide(request.getfixturevalue(who), APPROVERS) is decides


def test_without_approvers_any_signed_in_person_decides(outsider):
    assert permissions.can_decide(outsider, {})


@pytest.mark.parametrize("who", ["member", "staff"])
def test_an_inactive_account_decides_nothing(request, who):
    user = request.getfixturevalue(who)
    user.is_active = False
    assert not permissions.can_decide(user, APPROVERS)
    assert not permissions.can_decide(user, {})


def test_harbor_itself_and_a_target_secret_decide_nothing():
    for machine in (None, TargetSecretHolder("a-secret")):
        assert not permissions.can_decide(machine, {})


def test_a_refusal_names_who_may_decide(outsider):
    with pytest.raises(
        permissions.NotPermitted, match="staff and members of the group 'releasers'"
    ):
        permissions.check_can_decide(outsider, APPROVERS)
    permissions.check_can_decide(outsider, {})
