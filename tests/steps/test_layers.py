"""Which of Harbor's apps may import which: the API sits above the domain and the workers."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """The modules ``path`` imports, at its top level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


# Management commands are an interface beside the API (``build --json`` prints the REST
# API's shape of a build), so they may read the API's shapes; the rest of the app may not.
INTERFACES = [ROOT / "builds" / "management"]


@pytest.mark.parametrize("app", ["builds", "workers"])
def test_the_domain_and_the_steps_never_import_the_api(app):
    for path in (ROOT / app).rglob("*.py"):
        if any(path.is_relative_to(interface) for interface in INTERFACES):
            continue
        api = {name for name in imported_modules(path) if name.split(".")[0] == "messages_api"}
        assert not api, f"{path.relative_to(ROOT)} imports {sorted(api)}"
