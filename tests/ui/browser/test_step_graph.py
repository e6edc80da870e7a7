"""The build page's step graph in a real browser: one box per step, coloured by its target's
status, arrows for dependencies; a target that finishes recolours its box without a reload,
and a box links to its step's section. Rows are created directly; no workers are needed."""

import pytest
from playwright.sync_api import expect

from builds.models import BuildTarget, StatusEvent
from tests.conftest import make_plan
from tests.ui.browser.conftest import sign_in
from tests.ui.conftest import make_build, make_target

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_step_graph_is_drawn_and_recoloured_live(
    live_server, page, browser_user, buildable, screenshots
):
    steps = [{"key": "compile"}]
    steps += [{"key": f"test-{i}", "depends_on": ["compile"]} for i in range(6)]
    steps += [{"key": "deploy", "depends_on": [f"test-{i}" for i in range(6)]}]
    build = make_build(make_plan("fan", steps), buildable, status="building")
    make_target(build, "compile", status="passed")
    running = make_target(build, "test-0", status="building")
    sign_in(page, live_server.url, browser_user.username)
    page.goto(live_server.url + build.get_absolute_url())
    page.evaluate("document.getElementById('build-live').dataset.marker = 'kept'")

    graph = page.locator(".step-graph svg")
    expect(graph.locator("a.node")).to_have_count(8)
    expect(graph.locator("path.edge")).to_have_count(12)
    expect(graph.locator('a.node[data-key="compile"]')).to_have_class("node tone-ok status-passed")
    box = graph.locator('a.node[data-key="test-0"]')
    expect(box).to_have_class("node tone-run status-building")
    compile_x = graph.locator('a.node[data-key="compile"] rect').get_attribute("x")
    deploy_x = graph.locator('a.node[data-key="deploy"] rect').get_attribute("x")
    assert int(compile_x) < int(box.locator("rect").get_attribute("x")) < int(deploy_x)
    page.screenshot(path=screenshots / "step-graph.png")

    BuildTarget.objects.filter(pk=running.pk).update(status="failed")
    StatusEvent.objects.create(
        target=running, from_status="building", to_status="failed", cause="worker"
    )
    expect(box).to_have_class("node tone-bad status-failed")
    assert page.evaluate("document.getElementById('build-live').dataset.marker") == "kept"

    box.click()
    assert page.url.endswith("#step-test-0")
