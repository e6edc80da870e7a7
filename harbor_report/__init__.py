"""harbor_report: send a JUnit XML report to a Harbor build target from any CI host.

Needs only the standard library and ``requests``::

    python -m harbor_report --junit report.xml --receiver PHID-HMBT-… \\
        --base-url https://harbor.example.com --token api-… [--type work]

The token may also come from the ``HARBOR_TOKEN`` environment variable (keeps it out of
process listings). Exit status: 0 when Harbor accepted the report, 1 when Harbor refused it or
could not be reached, 2 for bad arguments.
"""

from harbor_report.client import ReportError, send_report

__all__ = ["ReportError", "send_report"]
