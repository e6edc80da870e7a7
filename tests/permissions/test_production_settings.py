"""Harbor refuses to start in production without a real ``SECRET_KEY`` (target callback
secrets are derived from it, so a public key lets anyone forge a target's verdict), refuses
malformed credentials at start, and the production configuration the README documents
passes ``manage.py check --deploy`` without a warning.

Each case starts ``manage.py`` in a child process with an environment of its own, as
web, workers and commands start: the settings are read once, when the process starts."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = secrets.token_urlsafe(50)
# What the settings and checks read that a case sets (or must not inherit from this test
# process); the rest of the environment is inherited.
OURS = (
    "SECRET_KEY",
    "DEBUG",
    "DJANGO_SETTINGS_MODULE",
    "ALLOWED_HOSTS",
    "HARBOR_CREDENTIALS",
    "HARBOR_HTTPS",
    "HARBOR_BEHIND_PROXY",
    "HARBOR_HSTS_SECONDS",
    # Set by the browser tests' conftest for Playwright; no deployment sets it.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)
# The production environment of README "Production".
PRODUCTION = {
    "SECRET_KEY": GOOD_KEY,
    "ALLOWED_HOSTS": "harbor.example.com",
    "HARBOR_BASE_URL": "https://harbor.example.com",
    "HARBOR_HTTPS": "true",
    "HARBOR_BEHIND_PROXY": "true",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``manage.py *args`` with Harbor's own settings and ``env`` (nothing of ours
    inherited from the test run), and return the finished process."""
    return start(["manage.py", *args], **env)


def start(command: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run ``python *command`` as ``manage``, and return the finished process."""
    environment = {k: v for k, v in os.environ.items() if k not in OURS}
    environment.update(env, DJANGO_SETTINGS_MODULE="harbor.settings")
    return subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    refused = manage("check")
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr and "SECRET_KEY" in refused.stderr
    assert "secrets.token_urlsafe(50)" in refused.stderr  # it says how to make one


@pytest.mark.parametrize(
    "command",
    [
        ["-c", "import harbor.wsgi"],  # what gunicorn loads
        # A worker on a queue no one sends to, in case it started after all.
        ["-m", "celery", "-A", "harbor", "worker", "-Q", "nokey.none", "-c", "1"],
    ],
    ids=["web", "worker"],
)
def test_web_and_workers_refuse_to_start_without_a_secret_key(command):
    refused = start(command)
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr and "SECRET_KEY" in refused.stderr


@pytest.mark.parametrize(
    "key",
    [
        "",
        "harbor-insecure-development-key-change-me",  # the former public default
        "change-me-in-production",  # the former docker-compose default
        "x" * 60,  # long, but five different characters at least are asked
        "django-insecure-" + secrets.token_urlsafe(50),
        secrets.token_urlsafe(30),  # shorter than 50 characters
    ],
)
def test_it_refuses_to_start_with_an_insecure_secret_key_when_debug_is_off(key):
    refused = manage("check", SECRET_KEY=key)
    assert refused.returncode != 0
    assert "SECRET_KEY" in refused.stderr
    assert not key or key not in refused.stderr  # the key itself is never printed


def test_it_starts_with_a_real_secret_key():
    started = manage("check", SECRET_KEY=GOOD_KEY)
    assert started.returncode == 0, started.stderr


def test_it_starts_without_a_secret_key_in_debug_mode():
    started = manage("check", DEBUG="1")
    assert started.returncode == 0, started.stderr


def test_it_refuses_to_start_with_a_malformed_credential_naming_the_entry():
    refused = manage(
        "check",
        SECRET_KEY=GOOD_KEY,
        HARBOR_CREDENTIALS='{"deploy": {"type": "bearer", "tokn": "hush-hush-value"}}',
    )
    assert refused.returncode != 0
    assert "HARBOR_CREDENTIALS entry 'deploy'" in refused.stderr
    assert "hush-hush-value" not in refused.stderr


def test_the_documented_production_configuration_passes_the_deploy_checks():
    checked = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert "no issues" in checked.stdout


def test_the_health_check_is_not_redirected_to_https_in_production():
    shown = manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_REDIRECT_EXEMPT, s.SECURE_PROXY_SSL_HEADER)",
        **PRODUCTION,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split(maxsplit=1)[0] == "True"
    assert "healthz" in shown.stdout and "HTTP_X_FORWARDED_PROTO" in shown.stdout
