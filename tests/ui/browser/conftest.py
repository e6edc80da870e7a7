"""Browser tests: Playwright for Python driving Debian's headless Chromium at
``/usr/bin/chromium`` (Playwright's own browser download cannot work here), against
pytest-django's live server and real Celery workers.

Screenshots go to ``test-artifacts/screenshots/<run timestamp>/``; the folder is printed at
the end of the run. Without Chromium or Playwright these tests are skipped, except in CI
(``CI=true``), where they fail: ``scripts/ensure-chromium.sh`` installs Chromium there.
"""

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django would then refuse the
# tests' own (synchronous) database calls with SynchronousOnlyOperation.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[3]
# A laptop screen.
VIEWPORT = {"width": 1366, "height": 900}
PASSWORD = "browser-password"

_screenshot_dirs: list[Path] = []


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (run scripts/ensure-chromium.sh)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    # expect() keeps its own 5 s default; a live page polls every 2 s, and on a loaded
    # 2-core machine a change can miss two polls.
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser page (its own cookies) on a laptop-sized viewport."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """This run's screenshot folder, ``test-artifacts/screenshots/<UTC timestamp>/``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = ROOT / "test-artifacts" / "screenshots" / f"{stamp}-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    _screenshot_dirs.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter):
    for folder in _screenshot_dirs:
        count = len(list(folder.glob("*.png")))
        terminalreporter.write_line(f"browser screenshots ({count}): {folder}")


@pytest.fixture
def browser_user(db):
    """A signed-in-able user with a known password."""
    from accounts.models import User

    return User.objects.create_user(username="bea", password=PASSWORD)


def sign_in(page, base_url: str, username: str) -> None:
    """Sign in through the sign-in page, as a person would."""
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")
