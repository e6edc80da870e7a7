"""The ``harbor-report`` command line.

    harbor-report pass|fail|work|auto --receiver PHID --base-url URL
        [--junit GLOB]... [--lint FILE] [--token-env NAME | --secret-env NAME]
        [--idempotency-key KEY] [--attempts N] [--timeout SECONDS]

``auto`` sends ``fail`` if a test failed or errored, else ``pass``. Credentials come from an
environment variable, never from the command line (it shows in process listings) and never
printed: the target's callback secret (``--secret-env``, default ``HARBOR_TARGET_SECRET``) or
an API token (``--token-env``, default ``HARBOR_TOKEN``); with neither option, whichever of
the two default variables is set, the secret first.

Exit status: 0 accepted; 3 duplicate (Harbor already has this message: a re-run or a
retry); 4 refused (Harbor answered 4xx: the reason is printed); 1 error (Harbor unreachable
or unavailable after every attempt, an unreadable report); 2 bad arguments.
"""

import argparse
import logging
import os
import sys
from collections.abc import Mapping

from harbor_report import idempotency, junit, lint
from harbor_report.sending import Answer, SendError, send_message

ACCEPTED, ERROR, USAGE, DUPLICATE, REFUSED = 0, 1, 2, 3, 4
TYPES = ("pass", "fail", "work", "auto")


class Failure(Exception):
    """The report cannot be sent; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = ERROR) -> None:
        super().__init__(message)
        self.code = code


def parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The argument parser; ``--receiver`` and ``--base-url`` default from ``environ``."""
    cli = argparse.ArgumentParser(
        prog="harbor-report", description="Report a CI job's verdict to a Harbor build target."
    )
    cli.add_argument("type", choices=TYPES, help="auto: fail if a test failed, else pass")
    cli.add_argument(
        "--receiver",
        default=environ.get("HARBOR_TARGET_PHID"),
        help="the build target's PHID (default: $HARBOR_TARGET_PHID)",
    )
    cli.add_argument(
        "--base-url",
        default=environ.get("HARBOR_URL"),
        help="Harbor's URL (default: $HARBOR_URL)",
    )
    cli.add_argument(
        "--junit",
        action="append",
        default=[],
        metavar="GLOB",
        help="JUnit XML reports (repeatable; ** matches directories)",
    )
    cli.add_argument("--lint", metavar="FILE", help="lint: a JSON list or checkstyle XML")
    auth = cli.add_mutually_exclusive_group()
    auth.add_argument(
        "--secret-env", metavar="NAME", help="variable holding the target's callback secret"
    )
    auth.add_argument("--token-env", metavar="NAME", help="variable holding an API token")
    cli.add_argument("--idempotency-key", help="default: derived from the CI's run (README)")
    cli.add_argument("--attempts", type=int, default=5, help="attempts in all (default 5)")
    cli.add_argument("--timeout", type=float, default=60, help="seconds per attempt")
    return cli


def authorization(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The ``Authorization`` header value; raises Failure (usage) when the variable is unset."""
    if args.secret_env or args.token_env:
        name = args.secret_env or args.token_env
    else:
        name = next((n for n in ("HARBOR_TARGET_SECRET", "HARBOR_TOKEN") if environ.get(n)), "")
        if not name:
            raise Failure(
                "set HARBOR_TARGET_SECRET or HARBOR_TOKEN (or name a variable with "
                "--secret-env or --token-env)",
                USAGE,
            )
    value = environ.get(name, "").strip()
    if not value:
        raise Failure(f"the environment variable {name} is not set", USAGE)
    is_secret = name == args.secret_env or (not args.token_env and name == "HARBOR_TARGET_SECRET")
    return f"Harbor-Target-Secret {value}" if is_secret else f"Bearer {value}"


def read_results(args: argparse.Namespace) -> dict:
    """``{"unit": [...], "lint": [...]}`` from the reports named; raises Failure."""
    paths, unmatched = junit.find_reports(args.junit)
    for pattern in unmatched:
        print(f"harbor-report: warning: no file matches --junit {pattern}", file=sys.stderr)
    try:
        units = junit.read_reports(paths)
        lint_messages = lint.read_lint(args.lint) if args.lint else []
    except junit.ReportError as error:
        raise Failure(str(error)) from error
    return {"unit": units, "lint": lint_messages}


def message(args: argparse.Namespace, environ: Mapping[str, str]) -> dict:
    """The ``sendmessage`` body; ``auto`` resolved from the unit results."""
    results = read_results(args)
    message_type = args.type
    if message_type == "auto":
        if not results["unit"]:
            raise Failure(
                "auto needs test results, and no JUnit report gave any; send pass or fail instead"
            )
        message_type = junit.verdict(results["unit"])
    key = args.idempotency_key
    if not key:
        key, source = idempotency.derive_key(args.receiver, message_type, environ)
        if source == "random":
            print(
                "harbor-report: no CI run id found: the idempotency key covers this "
                "invocation's retries only (see --idempotency-key)",
                file=sys.stderr,
            )
    return {"receiver": args.receiver, "type": message_type, "idempotency_key": key, **results}


def outcome(body: dict, answer: Answer) -> int:
    """Print what Harbor did with ``body``; return the exit status."""
    reply = answer.body
    if answer.status_code in (200, 202) and reply.get("status") in ("accepted", "duplicate"):
        tests = junit.counts(body["unit"])
        summary = ", ".join(f"{tests[k]} {k}" for k in ("pass", "fail", "broken", "skip"))
        print(
            f"{body['type']} {reply['status']}: message {reply.get('id')} to "
            f"{body['receiver']} ({tests['total']} tests: {summary}; "
            f"{len(body['lint'])} lint messages)"
        )
        return ACCEPTED if reply["status"] == "accepted" else DUPLICATE
    reason = reply.get("detail") or "no reason given"
    statuses = [
        f"{k.split('_')[0]} {reply[k]}" for k in ("target_status", "build_status") if reply.get(k)
    ]
    where = f" [{', '.join(statuses)}]" if statuses else ""
    code = reply.get("error", "error")
    print(
        f"harbor-report: {body['type']} refused (HTTP {answer.status_code} {code}): "
        f"{reason}{where}",
        file=sys.stderr,
    )
    return REFUSED if 400 <= answer.status_code < 500 else ERROR


def say_retries() -> None:
    """Print the client's own log (one line per retry) on stderr. Not the root logger:
    urllib3 logs each retry too, in its own terms, and the same retry would show twice."""
    logger = logging.getLogger("harbor_report")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("harbor-report: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line; returns the exit status (module docstring)."""
    environ = os.environ if environ is None else environ
    cli = parser(environ)
    args = cli.parse_args(argv)
    say_retries()
    try:
        if args.attempts < 1:
            raise Failure("--attempts must be 1 or more", USAGE)
        if not args.receiver or not args.base_url:
            raise Failure(
                "give --receiver and --base-url (or HARBOR_TARGET_PHID, HARBOR_URL)", USAGE
            )
        header = authorization(args, environ)
        body = message(args, environ)
        answer = send_message(args.base_url, header, body, args.attempts, args.timeout)
    except SendError as error:
        print(f"harbor-report: {error}", file=sys.stderr)
        return ERROR
    except Failure as failure:
        if failure.code == USAGE:
            cli.error(str(failure))
        print(f"harbor-report: {failure}", file=sys.stderr)
        return failure.code
    return outcome(body, answer)
