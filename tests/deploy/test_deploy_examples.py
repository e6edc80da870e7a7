"""The deployment examples (examples/deploy/, docker-compose.yml, docs/deploy.md) name only
commands, queues and settings Harbor really has, so the guide cannot drift from the code."""

import importlib
import re
import shlex
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "examples" / "deploy"
UNITS = [
    "harbor-web.service",
    "harbor-engine.service",
    "harbor-worker@.service",
    "harbor-beat.service",
]
# A variable name at the start of a line of the example environment file, set or commented out.
ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]+)=", re.MULTILINE)
SETTINGS_READ = re.compile(r'(?:os\.environ\.get|env_bool|env_int)\(\s*"([A-Z][A-Z0-9_]+)"')


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Read a systemd unit into {section: {key: [values]}}, joining lines ended by a backslash
    as systemd does; keys may repeat, so each holds a list."""
    sections: dict[str, dict[str, list[str]]] = {}
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def exec_start(unit: str) -> list[str]:
    """The argv of a unit's single ExecStart, with systemd's %-specifiers left as written."""
    (command,) = parse_unit(DEPLOY / unit)["Service"]["ExecStart"]
    return shlex.split(command)


def default_queues() -> set[str]:
    """Harbor's queue names under the default HARBOR_QUEUE_PREFIX (tests run with their own)."""
    source = (ROOT / "harbor" / "settings.py").read_text()
    (default,) = re.findall(r'os\.environ\.get\("HARBOR_QUEUE_PREFIX", "([^"]+)"\)', source)
    prefix = settings.HARBOR_QUEUE_PREFIX
    return {default + queue.name.removeprefix(prefix) for queue in settings.CELERY_TASK_QUEUES}


def queues_named(argv: list[str]) -> set[str]:
    """The queues a celery worker command line asks for with -Q (comma-separated)."""
    return {q for i, arg in enumerate(argv[:-1]) if arg == "-Q" for q in argv[i + 1].split(",")}


@pytest.mark.parametrize("unit", UNITS)
def test_each_unit_runs_as_harbor_from_the_environment_file_and_restarts_on_failure(unit):
    service = parse_unit(DEPLOY / unit)["Service"]
    assert service["User"] == ["harbor"]
    assert "/etc/harbor/harbor.env" in service["EnvironmentFile"]
    assert service["Restart"] == ["on-failure"]


@pytest.mark.parametrize("unit", UNITS)
def test_each_unit_starts_a_real_entry_point(unit):
    argv = exec_start(unit)
    program = Path(argv[0]).name
    if program == "gunicorn":
        module, _, attribute = argv[1].partition(":")
        assert module == "harbor.wsgi"
        assert hasattr(importlib.import_module(module), attribute or "application")
    else:
        assert program == "celery" and argv[1:3] == ["-A", "harbor"]
        assert argv[3] in {"worker", "beat"}
        assert importlib.import_module("harbor.celery").app.main == "harbor"


def test_the_engine_and_step_workers_serve_harbors_queues_and_beat_is_one_unit():
    engine, steps = exec_start("harbor-engine.service"), exec_start("harbor-worker@.service")
    queues = default_queues()
    assert queues_named(engine) == {q for q in queues if q.endswith(".engine")}
    assert queues_named(steps) == {q for q in queues if q.endswith(".targets")}
    assert exec_start("harbor-beat.service")[3] == "beat"
    assert not (DEPLOY / "harbor-beat@.service").exists()


@pytest.mark.parametrize("document", ["docs/deploy.md", "docker-compose.yml", "README.md"])
def test_documents_name_only_harbors_queues(document):
    text = (ROOT / document).read_text()
    named = {q for found in re.findall(r"-Q[\"', ]+([\w.,]+)", text) for q in found.split(",")}
    assert named, f"{document} names no queue"
    assert named <= default_queues()


def test_the_example_environment_documents_exactly_the_settings_harbor_reads():
    documented = set(ENV_LINE.findall((DEPLOY / "harbor.env").read_text()))
    read = set(SETTINGS_READ.findall((ROOT / "harbor" / "settings.py").read_text()))
    assert read, "no setting found in harbor/settings.py"
    assert documented == read


def test_the_docker_image_installs_git_for_command_steps_that_clone():
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"apt-get install[^&]*", dockerfile)
    assert any(re.search(r"\bgit\b", line) for line in installs)


def test_docker_compose_runs_the_processes_the_guide_names():
    compose = (ROOT / "docker-compose.yml").read_text()
    for command in (
        '"gunicorn", "harbor.wsgi"',
        '"worker", "-Q", "harbor.engine"',
        '"worker", "-Q", "harbor.targets"',
    ):
        assert command in compose
    assert compose.count('"celery", "-A", "harbor", "beat"') == 1


def test_worker_health_checks_call_workerhealth_on_harbors_queues():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert compose.count("manage.py workerhealth --name celery@$$HOSTNAME") == 2
    argv = exec_start("harbor-workerhealth.service")
    assert argv[1:3] == ["manage.py", "workerhealth"]
    checked = {argv[i + 1] for i, arg in enumerate(argv) if arg == "--queue"}
    assert checked == default_queues()
    timer = parse_unit(DEPLOY / "harbor-workerhealth.timer")
    assert timer["Timer"]["OnUnitActiveSec"]


def test_the_web_unit_makes_no_control_socket_in_a_home_the_system_user_lacks():
    assert "--no-control-socket" in exec_start("harbor-web.service")


def test_the_guides_first_start_imports_plans_that_exist():
    guide = (ROOT / "docs" / "deploy.md").read_text()
    (pattern,) = re.findall(r"for plan in (\S+); do python manage.py importplan", guide)
    assert sorted(ROOT.glob(pattern)), f"{pattern} matches no file"
