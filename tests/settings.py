"""Test settings: Harbor's own settings, with Celery queues and a Redis database number of
the test run's own, so a Harbor worker running elsewhere on the machine never takes the
tests' tasks (and the tests' workers never take its), and a secret key of its own (set in
the environment, so the worker processes a test starts share it)."""

import os
import secrets

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("HARBOR_QUEUE_PREFIX", f"harbortest{os.getpid()}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("HARBOR_REPAIR_BOUND", "30")

from harbor.settings import *  # noqa: E402,F403

# Hashing passwords slowly buys nothing in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# One test database per test run, so runs in parallel (several engineers, CI) never collide.
DATABASES["default"]["TEST"] = {"NAME": f"test_harbor_{os.getpid()}"}  # noqa: F405

# Test-only helpers: a ``flush`` that survives deadlocks with still-busy test workers.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
