import pytest

from builds import engine
from builds.models import Build, BuildTarget
from tests.conftest import make_plan
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]


def test_a_waiting_build_passes_after_its_pass_message(celery_workers, buildable):
    plan = make_plan("wait", [{"key": "ci", "step_type": "sleep", "wait_for_message": True}])
    build = engine.start_build(plan, buildable)
    target = wait_for(lambda: BuildTarget.objects.filter(build=build, status="waiting").first())
    engine.receive_message(target.phid, "pass")
    wait_for(lambda: Build.objects.get(pk=build.pk).status == "passed")
