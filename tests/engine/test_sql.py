"""builds.sql, the hot paths' SQL helpers, against the ORM they stand in for."""

import pytest

from accounts.models import ApiToken
from builds import sql
from builds.engine import rows
from builds.models import Build
from tests.engine.conftest import waiting_step

pytestmark = pytest.mark.django_db


def test_update_refuses_lookups_it_does_not_implement(start):
    build = start([waiting_step("ci")]).build
    with pytest.raises(ValueError, match="generation__lt"):
        sql.update(Build, {"status": "paused"}, id=build.pk, generation__lt=5)


def test_update_changes_only_rows_matching_every_condition(start):
    build = start([waiting_step("ci")]).build
    assert sql.update(Build, {"status": "paused"}, id=build.pk, status__in=["pending"]) == 0
    assert sql.update(Build, {"status": "paused"}, id=build.pk, status__in=["building"]) == 1
    assert Build.objects.get(pk=build.pk).status == "paused"


def test_instances_from_joined_rows_get_decoded_values(start):
    build = start([waiting_step("ci")]).build
    found = sql.fetch_one(
        f"SELECT {sql.columns(Build, 'b', 'build', ['id', 'plan_snapshot', 'parameters'])}"
        " FROM builds_build b WHERE b.id = %s",
        [build.pk],
    )
    names, row = found
    loaded = sql.instance(Build, "build", names, row)
    assert loaded.plan_snapshot == Build.objects.get(pk=build.pk).plan_snapshot
    assert isinstance(loaded.plan_snapshot, list)


def test_the_receiving_target_comes_with_what_sendmessage_checks(start):
    driver = start([waiting_step("ci")])
    target = driver.target("ci")
    found = rows.lock_receiving_target(target.phid)
    assert (found.pk, found.status, found.build.status) == (target.pk, "pending", "building")
    assert found.build.plan.name == driver.build.plan.name
    assert rows.lock_receiving_target("PHID-HMBT-nosuchtarget") is None


def test_the_token_lookup_returns_the_token_with_its_user(user):
    token, clear = ApiToken.issue(user, "ci")
    found = ApiToken.find_active(clear)
    assert (found.pk, found.user.pk, found.user.username) == (token.pk, user.pk, user.username)
    assert ApiToken.find_active(clear + "x") is None
