"""Fixtures for JUnit tests: the sample reports, and a report made by really running pytest
on a small sample project."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "junit"

SAMPLE_PROJECT = {
    "calc.py": """
        def add(a, b):
            return a + b
    """,
    "test_calc.py": """
        import pytest
        from calc import add

        def test_adds():
            assert add(2, 2) == 4

        class TestEdges:
            def test_negative(self):
                assert add(-1, -1) == -2

            def test_wrong_on_purpose(self):
                assert add(1, 1) == 3, "one and one"

        @pytest.fixture
        def broken():
            raise RuntimeError("fixture exploded")

        def test_needs_a_broken_fixture(broken):
            pass

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass
    """,
}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def run_pytest_on_sample_project(directory: Path, only_passing: bool = False) -> Path:
    """Write the sample project into ``directory``, run pytest on it with ``--junitxml``
    in a child process, and return the report's path."""
    for name, source in SAMPLE_PROJECT.items():
        (directory / name).write_text(textwrap.dedent(source))
    (directory / "pytest.ini").write_text("[pytest]\n")
    report = directory / "report.xml"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    selection = ["-k", "adds or negative"] if only_passing else []
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:django",
            f"--junitxml={report}",
            "-o",
            "junit_family=xunit1",
            *selection,
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert report.exists(), "pytest wrote no JUnit report"
    return report


@pytest.fixture(scope="session")
def report_by_pytest(tmp_path_factory) -> Path:
    """A JUnit report of the sample project: 2 pass, 1 fail, 1 error, 1 skip."""
    return run_pytest_on_sample_project(tmp_path_factory.mktemp("sample_project"))


@pytest.fixture(scope="session")
def passing_report_by_pytest(tmp_path_factory) -> Path:
    return run_pytest_on_sample_project(tmp_path_factory.mktemp("passing_project"), True)
