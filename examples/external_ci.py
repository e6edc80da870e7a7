#!/usr/bin/env python3
"""A small "external CI" for Harbor's demo: it runs a real test suite and reports back.

    python examples/external_ci.py [--port 9900] [--harbor-url URL] [--token TOKEN]

Endpoints (what the plan examples/plans/external-ci.yaml calls):
    POST /run?target=PHID&commit=SHA  answers 200 "accepted" at once; a background thread
        runs examples/sample_project's tests with pytest, turns the JUnit XML into Harbor
        unit results, and sends {"receiver": PHID, "type": "pass"|"fail", "unit": [...]} to
        Harbor's POST /api/v1/sendmessage with "Authorization: Bearer <token>".
    GET /done?build=ID  answers 200 (the plan's last step tells us the build is over).

Settings come from the arguments or the environment: HARBOR_URL (default
http://127.0.0.1:8000), HARBOR_TOKEN (an API token from ``manage.py createapitoken``),
EXTERNAL_CI_PORT (default 9900). Standard library plus requests; nothing from Harbor.
"""

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

SAMPLE_PROJECT = Path(__file__).resolve().parent / "sample_project"
DETAILS_LIMIT = 4000  # characters of a failure's text sent as a unit result's details
SEND_ATTEMPTS = 5

log = logging.getLogger("external-ci")


SAFE_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV")


def run_tests(commit: str) -> tuple[int, list[dict], str]:
    """Run the sample project's tests; return pytest's exit code, unit results and output.

    The commit is passed to the tests as SAMPLE_COMMIT (a commit starting with "bad" fails
    one of them, so the demo can show a failing build).
    """
    with tempfile.TemporaryDirectory(prefix="external-ci-") as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-p", "no:django", "-q"]
        command += ["-o", "junit_family=xunit1", f"--junitxml={junit}"]
        # Only what the tests need: this service's own token must never reach a test (a
        # failing test's report would show it on the build page).
        env = {name: os.environ[name] for name in SAFE_ENVIRONMENT if name in os.environ}
        env["SAMPLE_COMMIT"] = commit
        done = subprocess.run(
            command, cwd=SAMPLE_PROJECT, env=env, capture_output=True, text=True, timeout=300
        )
        units = parse_junit(junit) if junit.exists() else []
    return done.returncode, units, done.stdout + done.stderr


def parse_junit(path: Path) -> list[dict]:
    """Turn pytest's JUnit XML (our own trusted file) into Harbor unit result dicts."""
    units = []
    for case in ET.parse(path).getroot().iter("testcase"):
        result, details = "pass", ""
        for child, outcome in (("failure", "fail"), ("error", "broken"), ("skipped", "skip")):
            element = case.find(child)
            if element is not None:
                result = outcome
                details = (element.get("message") or "") + "\n" + (element.text or "")
                break
        units.append(
            {
                "name": case.get("name", ""),
                "namespace": case.get("classname", ""),
                "engine": "pytest",
                "result": result,
                "duration": float(case.get("time") or 0),
                "path": case.get("file", ""),
                "details": details.strip()[:DETAILS_LIMIT],
            }
        )
    return units


def verdict(returncode: int, units: list[dict]) -> str:
    """``pass`` only if pytest succeeded and no unit failed or broke."""
    failed = any(unit["result"] in ("fail", "broken") for unit in units)
    return "pass" if returncode == 0 and units and not failed else "fail"


def send_message(config: argparse.Namespace, message: dict) -> None:
    """POST the message to Harbor, retrying connection errors and 5xx answers.

    The idempotency key makes a retry of a message Harbor already stored harmless: Harbor
    answers 200 "duplicate" instead of storing it twice.
    """
    url = config.harbor_url.rstrip("/") + "/api/v1/sendmessage"
    headers = {"Authorization": f"Bearer {config.token}"}
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            response = requests.post(url, json=message, headers=headers, timeout=30)
        except requests.RequestException as exc:
            log.warning("sendmessage attempt %d failed: %s", attempt, exc)
        else:
            log.info("sendmessage -> %d %s", response.status_code, response.text[:300])
            if response.status_code < 500:
                return
        time.sleep(attempt)
    log.error("gave up sending %s to %s", message["type"], message["receiver"])


def handle_run(config: argparse.Namespace, target: str, commit: str) -> None:
    """The background job for one POST /run: test, then report to the target."""
    log.info("testing commit %r for %s", commit, target)
    try:
        returncode, units, output = run_tests(commit)
    except (OSError, subprocess.SubprocessError) as exc:
        returncode, units, output = -1, [], str(exc)
    if not units:
        units = [{"name": "pytest", "result": "broken", "details": output[-DETAILS_LIMIT:]}]
    kind = verdict(returncode, units)
    counts = {result: sum(u["result"] == result for u in units) for result in ("pass", "fail")}
    log.info("pytest exited %d (%s): reporting %s to %s", returncode, counts, kind, target)
    message = {
        "receiver": target,
        "type": kind,
        "unit": units,
        "idempotency_key": f"external-ci:{target}",
    }
    send_message(config, message)


class Handler(BaseHTTPRequestHandler):
    """Routes /run and /done; everything else is 404."""

    config: argparse.Namespace  # set on the class by main()

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/run":
            return self.answer(404, "not found")
        query = parse_qs(url.query)
        target = query.get("target", [""])[0]
        if not target.startswith("PHID-"):
            return self.answer(400, "target=PHID required")
        commit = query.get("commit", [""])[0]
        job = threading.Thread(target=handle_run, args=(self.config, target, commit))
        job.start()
        self.answer(200, "accepted")

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/done":
            return self.answer(404, "not found")
        log.info("build %s is done", parse_qs(url.query).get("build", ["?"])[0])
        self.answer(200, "ok")

    def answer(self, status: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        log.info("%s %s", self.address_string(), format % args)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("EXTERNAL_CI_PORT", 9900)))
    parser.add_argument(
        "--harbor-url", default=os.environ.get("HARBOR_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--token", default=os.environ.get("HARBOR_TOKEN", ""))
    config = parser.parse_args(argv)
    if not config.token:
        parser.error("an API token is required: --token or HARBOR_TOKEN")
    return config


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout
    )
    Handler.config = config
    server = ThreadingHTTPServer((config.host, config.port), Handler)
    log.info(
        "listening on http://%s:%d, reporting to %s", config.host, config.port, config.harbor_url
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
