"""``python -m harbor_report``: the command line (see the package docstring)."""

import argparse
import os
import sys

from harbor_report.client import ReportError, send_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="harbor_report", description="Send a JUnit XML report to a Harbor build target."
    )
    parser.add_argument("--junit", required=True, help="path of the JUnit XML file")
    parser.add_argument("--receiver", required=True, help="the build target's PHID")
    parser.add_argument("--base-url", required=True, help="Harbor's URL, e.g. https://harbor")
    parser.add_argument(
        "--token", default=os.environ.get("HARBOR_TOKEN"), help="API token (default: $HARBOR_TOKEN)"
    )
    parser.add_argument(
        "--type",
        choices=["auto", "work"],
        default="auto",
        help="auto: pass or fail from the results (default); work: partial",
    )
    parser.add_argument("--timeout", type=float, default=60, help="seconds per request")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("give --token or set HARBOR_TOKEN")
    return args


def main(argv: list[str] | None = None) -> int:
    """Send the report; print what Harbor stored. Returns the exit status."""
    args = parse_args(argv)
    try:
        sent = send_report(
            args.junit, args.receiver, args.base_url, args.token, args.type, timeout=args.timeout
        )
    except (ReportError, OSError) as error:
        print(f"harbor_report: {error}", file=sys.stderr)
        return 1
    body = sent.body
    tests = body.get("tests", {})
    counts = ", ".join(f"{tests.get(k, 0)} {k}" for k in ("pass", "fail", "broken", "skip"))
    print(
        f"{body.get('type')} sent to {body.get('receiver')} as message {body.get('id')} "
        f"({body.get('status')}): {tests.get('total', 0)} tests, {counts}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
