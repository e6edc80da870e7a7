"""``flush`` that retries when PostgreSQL picks it as a deadlock victim.

Transactional tests empty the database with ``flush`` (TRUNCATE) after each test. The
session's real Celery workers may still be finishing a task of that test (a pass, a target
run), and TRUNCATE's table locks can then deadlock with the worker's row locks. PostgreSQL
aborts one of the two: if it aborts the worker, its task retries; if it aborts the flush,
the next test would start on the previous test's rows. Retrying the flush fixes the latter.
"""

import time

from django.core.management.base import CommandError
from django.core.management.commands.flush import Command as DjangoFlush

ATTEMPTS = 5


class Command(DjangoFlush):
    def handle(self, **options):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return super().handle(**options)
            except CommandError as exc:
                if "deadlock" not in str(exc.__cause__ or exc) or attempt == ATTEMPTS:
                    raise
                time.sleep(0.1 * attempt)
