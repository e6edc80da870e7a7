"""harbor-report: report a CI job's verdict to a Harbor build target, with its JUnit results
and lint messages, from any CI host with Python and ``requests``.

    harbor-report auto --receiver PHID-HMBT-… --junit 'reports/*.xml' \\
        --base-url https://harbor.example.com

The command line is ``harbor_report.cli``; the pieces are importable too:
``junit.read_reports``, ``lint.read_lint``, ``idempotency.derive_key`` and
``sending.send_message``.
"""

__version__ = "1.0.0"
