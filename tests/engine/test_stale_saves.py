"""A stale instance of an engine-owned row, saved whole after the engine moved the row on,
must not write back what it read: the row keeps the engine's status."""

import pytest

from builds.models import Build, BuildMessage, EngineOwnedRowError
from tests.engine.conftest import waiting_step

pytestmark = pytest.mark.django_db


def test_a_stale_waiting_target_saved_after_a_pass_cannot_move_it_back_to_waiting(start):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    stale = driver.target("ci")
    assert stale.status == "waiting"
    driver.send("ci", "pass")
    driver.update()
    with pytest.raises(EngineOwnedRowError):
        stale.save()
    target = driver.target("ci")
    assert (target.status, driver.refresh().status) == ("passed", "passed")
    assert target.date_completed is not None


def test_a_stale_unconsumed_message_saved_after_the_pass_applied_it_stays_consumed(start):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    stale = driver.send("ci", "pass").message
    driver.update()
    with pytest.raises(EngineOwnedRowError):
        stale.save()
    message = BuildMessage.objects.get(pk=stale.pk)
    assert (message.is_consumed, message.outcome) == (True, "target passed")


def test_a_stale_building_build_saved_after_it_passed_cannot_move_it_back(start):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    stale = Build.objects.get(pk=driver.build.pk)
    assert stale.status == "building"
    driver.send("ci", "pass")
    driver.update()
    with pytest.raises(EngineOwnedRowError):
        stale.save(update_fields=["status", "date_modified"])
    assert driver.refresh().status == "passed"
