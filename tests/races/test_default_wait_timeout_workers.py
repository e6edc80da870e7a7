"""``HARBOR_DEFAULT_WAIT_TIMEOUT`` on real workers: a step that sets no ``wait_timeout``
stops waiting when the workers' default says, settled by beat's periodic check."""

import pytest

from builds import engine
from builds.models import Build, BuildTarget, StatusEvent
from tests.conftest import make_plan
from tests.races.test_crashes import cluster  # noqa: F401  (the fixture)
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]


def test_the_default_wait_timeout_fails_a_wait_with_no_timeout_of_its_own(
    cluster,  # noqa: F811
    tmp_path,
    buildable,
):
    c = cluster()
    c.sending = True
    c.worker(beat=True, HARBOR_DEFAULT_WAIT_TIMEOUT="1", HARBOR_WAIT_CHECK="0.5")
    plan = make_plan("waits", [{"key": "ci", "step_type": "sleep", "wait_for_message": True}])
    build = engine.start_build(plan, buildable)

    # The deadline is the worker's default (this test process has none). It is set as the
    # target starts waiting and stays, while "waiting" itself lasts only a second or two.
    waited = wait_for(
        lambda: BuildTarget.objects.filter(build=build, wait_deadline__isnull=False).first(),
        timeout=60,
        message="the target never started waiting with a deadline",
    )
    wait_for(lambda: Build.objects.get(pk=build.pk).status == "failed", timeout=60)
    event = StatusEvent.objects.get(target=waited, to_status="failed")
    assert event.cause == "timeout" and "HARBOR_DEFAULT_WAIT_TIMEOUT" in event.detail
