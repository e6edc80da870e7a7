"""The reporting client installed as a CI host installs it: into a virtual environment of
its own (not the test run's), from a copy of its directory, with a plain ``pip install``. pip
fetches ``requests`` and the build's setuptools from the index it is configured with (PyPI,
or the machine's mirror): about 6 s."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "harbor-report"


@pytest.fixture(scope="session")
def harbor_report_command(tmp_path_factory) -> Path:
    """The ``harbor-report`` console script of a fresh virtual environment."""
    root = tmp_path_factory.mktemp("client")
    # A copy, as a checkout on a CI host: building in place would leave build/ behind.
    source = shutil.copytree(
        CLIENT, root / "harbor-report", ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet", source]
    subprocess.run(pip, check=True, timeout=300)
    return venv / "bin" / "harbor-report"
