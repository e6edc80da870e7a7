"""The build page with a real test suite: 50,000 unit results and a log of 8 MiB.

    .venv/bin/python bench/page.py [--units 50000] [--log-mib 8] [--runs 15]

Uses the bench's own database (``bench/harness.py``: ``harbor_bench`` re-created, or
``HARBOR_BENCH_DB``). Inserts one building build whose waiting target has ``--units`` unit
results (1 % failing, with details; 5 % skipped; the rest passed) and a live log of
``--log-mib`` MiB in 1 MiB chunks, by bulk inserts, not through the engine. Then, in this
process with Django's test client (no network), it requests the build page ``--runs`` times
and the live region's poll (the URL in the page's ``hx-get``, nothing changed since) as
many times, and prints for each the median server time, the response's size in bytes, its
status and its number of queries, with the machine's load average. Then, unless
``--no-browser`` or Chromium (``/usr/bin/chromium``) is missing, it serves Harbor on a local
port from a thread of this process and loads the build page ``--browser-runs`` times in
headless Chromium (Playwright, signed in with the test client's session), printing the
median time from navigation to the response's end, to DOM ready and to the load event.
"""

import argparse
import html
import os
import re
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

BATCH = 5000
CHUNK = 1024 * 1024
POLL_URL = re.compile(r'hx-get="([^"]+)"')


def one_target_build(plan, buildable, build_status: str, target_status: str, **target_fields):
    """A build of ``plan``'s first step in generation 1, with its one target, as the engine
    and a worker leave them (rows written directly: the bench needs many, fast)."""
    from builds.models import Build, BuildTarget  # noqa: PLC0415 (Django is set up late)

    step = plan.snapshot()[0]
    build = Build.objects.create(
        plan=plan,
        buildable=buildable,
        status=build_status,
        generation=1,
        plan_snapshot=plan.snapshot(),
    )
    target = BuildTarget.objects.create(
        build=build,
        step_key=step["key"],
        generation=1,
        name=step["name"],
        step_type=step["type"],
        status=target_status,
        attempt=1,
        **target_fields,
    )
    return build, target


def insert_build(world, units: int, log_mib: int):
    """A building build with one waiting target, ``units`` unit results and a live log of
    ``log_mib`` MiB; returns the build."""
    from django.db import transaction  # noqa: PLC0415 (Django is set up by fresh_world)

    from bench import world as world_module
    from builds.models import Buildable, BuildLog, BuildLogChunk

    with transaction.atomic():
        buildable = Buildable.objects.create(repository="bench", commit="page-1")
        build, target = one_target_build(
            world.wait_plan, buildable, "building", "waiting", wait_for_message=True
        )
        insert_units(target, units)
        log = BuildLog.objects.create(target=target, source="bench", log_type="stdout")
        line = "collected 50000 items; tests/test_module.py::test_case PASSED [ 42%]\n"
        text = (line * (CHUNK // len(line) + 1))[:CHUNK]
        BuildLogChunk.objects.bulk_create(BuildLogChunk(log=log, text=text) for _ in range(log_mib))
    world_module.analyze()
    return build


def insert_units(target, units: int) -> None:
    from builds.models import UnitResult  # noqa: PLC0415

    def result(i: int) -> UnitResult:
        kind = "fail" if i % 100 == 0 else "skip" if i % 20 == 1 else "pass"
        details = f"AssertionError: expected {i} got {i + 1}\n" * 20 if kind == "fail" else ""
        return UnitResult(
            target=target,
            name=f"test_case_{i}",
            namespace=f"tests/test_module_{i // 50}.py",
            engine="pytest",
            result=kind,
            duration=0.001 * (i % 1000),
            details=details,
        )

    for start in range(0, units, BATCH):
        UnitResult.objects.bulk_create(result(i) for i in range(start, min(units, start + BATCH)))


def measure(client, url: str, runs: int) -> dict:
    """Median server time (ms) of ``runs`` GETs of ``url``, with the last response's
    status, size in bytes and query count."""
    from django.db import connection  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    times = []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - start)
    return {
        "ms": statistics.median(times) * 1000,
        "best_ms": min(times) * 1000,
        "status": response.status_code,
        "bytes": len(response.content),
        "queries": len(queries.captured_queries),
        "body": response.content.decode(errors="replace"),
    }


def report(name: str, figures: dict) -> None:
    print(
        f"{name:<22} {figures['status']}  median {figures['ms']:7.1f} ms "
        f"(best {figures['best_ms']:.1f})  {figures['bytes']:>10,} bytes  "
        f"{figures['queries']} queries"
    )


CHROMIUM = "/usr/bin/chromium"
RENDER_TIMES = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  return {response: nav.responseEnd, ready: nav.domContentLoadedEventEnd, load: nav.loadEventEnd};
}"""


def serve() -> tuple[str, object]:
    """Harbor (with its static files) on a free local port, served from a daemon thread:
    (base URL, server)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server  # noqa: PLC0415

    from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: PLC0415
    from django.core.wsgi import get_wsgi_application  # noqa: PLC0415

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = make_server(
        "127.0.0.1", 0, StaticFilesHandler(get_wsgi_application()), handler_class=Quiet
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def browser_render(client, url: str, runs: int) -> dict | None:
    """Median milliseconds from navigation to the response's end, DOMContentLoaded's end
    and the load event's end, over ``runs`` loads of ``url`` in headless Chromium."""
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: no browser figures")
        return None
    # Playwright's sync API runs an event loop in this thread; Django's ORM would refuse.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    base, server = serve()
    session = client.cookies["sessionid"].value
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
        page = context.new_page()
        for _ in range(runs):
            page.goto(base + url, wait_until="load", timeout=120_000)
            times.append(page.evaluate(RENDER_TIMES))
        browser.close()
    server.shutdown()
    return {name: statistics.median(t[name] for t in times) for name in times[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=50_000)
    parser.add_argument("--log-mib", type=int, default=8)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--browser-runs", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    world = harness.fresh_world()
    from django.test import Client  # noqa: PLC0415

    from accounts.models import User  # noqa: PLC0415

    start = time.perf_counter()
    build = insert_build(world, args.units, args.log_mib)
    print(
        f"inserted {args.units:,} unit results and a {args.log_mib} MiB log in "
        f"{time.perf_counter() - start:.1f} s; load {harness.load_average()}"
    )
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    page = measure(client, build.get_absolute_url(), args.runs)
    report("build page", page)
    found = POLL_URL.search(page["body"])
    if found is None:
        print("the page does not poll")
        return
    report("unchanged live poll", measure(client, html.unescape(found.group(1)), args.runs))
    print(f"load {harness.load_average()}")
    if not args.no_browser:
        render = browser_render(client, build.get_absolute_url(), args.browser_runs)
        if render:
            print(
                f"chromium build page    median: response end {render['response']:.0f} ms, "
                f"DOM ready {render['ready']:.0f} ms, load {render['load']:.0f} ms"
            )
            print(f"load {harness.load_average()}")


if __name__ == "__main__":
    main()
