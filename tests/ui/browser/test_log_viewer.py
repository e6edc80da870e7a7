"""The log viewer in a real browser: colours instead of escape sequences, a search whose
results link to their lines, a line link that scrolls to and marks its line, and the way
there from the build page. Rows are created directly; no workers are needed."""

import pytest
from playwright.sync_api import expect

from builds.models import BuildLog, BuildLogChunk
from tests.ui.browser.conftest import sign_in
from tests.ui.conftest import make_build, make_target, plan_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_searching_a_log_and_following_a_line_link(
    live_server, page, browser_user, buildable, screenshots
):
    build = make_build(plan_of(1), buildable, status="failed")
    target = make_target(build, "step-0", status="failed")
    text = "".join(f"step {n} ok\n" for n in range(1, 3001))
    text = text.replace("step 1234 ok\n", "\x1b[1;31mstep 1234 broke: disk full\x1b[0m\n")
    log = BuildLog.objects.create(target=target, source="make", log_type="stdout", is_live=False)
    BuildLogChunk.objects.bulk_create(
        BuildLogChunk(log=log, text=text[i : i + 4096]) for i in range(0, len(text), 4096)
    )
    sign_in(page, live_server.url, browser_user.username)
    page.goto(live_server.url + build.get_absolute_url())
    tail = page.locator(f"#log-{log.id}")
    expect(tail.locator(".line").last).to_contain_text("step 3000 ok")
    page.get_by_role("link", name="Open in the log viewer").click()

    page.get_by_label("Search the log").fill("disk full")
    page.get_by_role("button", name="Search").click()
    matches = page.locator(".log-matches .line")
    expect(matches).to_have_count(1)
    matches.first.get_by_role("link", name="Line 1234").click()

    line = page.locator("#L1234")
    expect(line).to_be_in_viewport()
    assert page.url.endswith("#L1234")
    red = line.locator(".ansi-fg-red.ansi-bold")
    expect(red).to_have_text("step 1234 broke: disk full")
    assert "\x1b" not in line.inner_text() and "[1;31m" not in line.inner_text()
    # The line the link names is marked (CSS :target).
    assert line.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    page.screenshot(path=screenshots / "log-viewer-line-link.png")


def test_the_viewer_follows_the_tail_of_a_live_log(live_server, page, browser_user, buildable):
    build = make_build(plan_of(1), buildable, status="building")
    target = make_target(build, "step-0", status="building")
    log = BuildLog.objects.create(target=target, source="make", log_type="stdout")
    BuildLogChunk.objects.create(log=log, text="".join(f"line {n}\n" for n in range(1, 301)))
    sign_in(page, live_server.url, browser_user.username)
    page.goto(f"{live_server.url}/logs/{log.id}/")
    lines = page.locator("#log-lines pre")
    expect(lines.locator(".line").last).to_contain_text("line 300")

    BuildLogChunk.objects.create(log=log, text="line 301 \x1b[32mall green\x1b[0m\n")
    newest = page.locator("#L301")
    expect(newest).to_contain_text("all green")
    expect(newest.locator(".ansi-fg-green")).to_have_text("all green")
    # Followed: the box is scrolled to its end, showing the new line.
    at_end = "e => e.scrollTop + e.clientHeight >= e.scrollHeight - 8"
    assert lines.evaluate(at_end)
