"""Build variables and ``${name}`` substitution (docs/harbormaster.md §5; docs/design.md §4.3).

A target's variables are snapshotted when the engine creates it; ``target.id``,
``target.phid`` and ``target.secret`` are added when read. Names match ``[a-z0-9._/-]+``.
Plan import refuses a name no target can have (``unknown_variable_problems``); a name the
target lacks when it runs (a build parameter not given) raises ``UnknownVariable``, which
fails the target with a clear log line.
Each field escapes the values it receives (a URI encodes them; a command gets them as
environment variables).
"""

import difflib
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from builds.models import Build, BuildTarget
from builds.secrets import MASK, SECRET_VARIABLES, is_sensitive_name, mask_config, target_secret

VARIABLE = re.compile(r"\$\{([a-z0-9._/-]+)\}")
PARAMETER_NAME = re.compile(r"[a-z0-9._/-]+")
PARAMETER_PREFIX = "build.param."
# Every name a target has (``snapshot_variables`` and ``target_variables``), besides one
# ``build.param.<name>`` per build parameter; plan import refuses any other.
VARIABLE_NAMES = (
    "build.id",
    "build.phid",
    "build.generation",
    "step.key",
    "step.timestamp",
    "initiator.phid",
    "buildable.phid",
    "buildable.object.phid",
    "buildable.commit",
    "buildable.ref",
    "buildable.diff",
    "buildable.revision",
    "buildable.base_ref",
    "repository.uri",
    "target.id",
    "target.phid",
    "target.secret",
)
# Harbor's own variables that hold no secret, whatever their names look like ("step.key").
PUBLIC_VARIABLES = frozenset(VARIABLE_NAMES) - {"target.secret"}
# Shorter values of secret variables are not searched for in other text (too many false hits).
MIN_SECRET_LENGTH = 4


def parameter_name_problem(names: Iterable[str]) -> str | None:
    """Why some of ``names`` cannot be build parameter names (each must be
    ``[a-z0-9._/-]+``, whole, to be usable as ``${build.param.<name>}``), or None if all
    can. The one rule for every way of starting a build (REST, the UI form)."""
    bad = sorted(name for name in names if not PARAMETER_NAME.fullmatch(name))
    if not bad:
        return None
    return "Parameter names must match [a-z0-9._/-]+ (used as ${build.param.<name>}): " + ", ".join(
        repr(name) for name in bad
    )


def unknown_variable_problems(value: Any) -> list[str]:
    """One problem per ``${name}`` in ``value`` (text, or every text, key or item inside a
    mapping or list) that no target can have: not in ``VARIABLE_NAMES`` and not
    ``build.param.<name>``. A build parameter is only known when a build starts, so any
    well-formed one passes. The nearest known name is suggested."""
    problems: list[str] = []
    pending = [value]
    while pending:  # without recursion, so deep nesting cannot hit the recursion limit
        item = pending.pop()
        if isinstance(item, dict):
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            pending += item
        elif isinstance(item, str):
            problems += [_unknown_name(name) for name in VARIABLE.findall(item) if not _known(name)]
    return problems


# ``approval.<step key>.<field>``: a field of an approval decided earlier in the run.
APPROVAL_VARIABLE = re.compile(r"approval\.[a-z0-9._-]+\.[a-z0-9_-]+")


def _known(name: str) -> bool:
    return (
        name in VARIABLE_NAMES
        or (name.startswith(PARAMETER_PREFIX) and len(name) > len(PARAMETER_PREFIX))
        or bool(APPROVAL_VARIABLE.fullmatch(name))
    )


def _unknown_name(name: str) -> str:
    nearest = difflib.get_close_matches(name, VARIABLE_NAMES, n=1)
    hint = f" (did you mean ${{{nearest[0]}}}?)" if nearest else ""
    return f"unknown variable ${{{name}}}{hint}"


class UnknownVariable(ValueError):
    """A template names a variable the target does not have."""


def snapshot_variables(
    build: Build, step: dict, now: datetime, approvals: Mapping[str, str] | None = None
) -> dict[str, str | None]:
    """The variables a new target of ``step`` in ``build`` sees (JSON-ready strings), with
    ``approvals`` (``builds.approvals.approval_variables``) among them."""
    buildable = build.buildable
    variables = {
        "build.id": str(build.pk),
        "build.phid": build.phid,
        "build.generation": str(build.generation),
        "step.key": step["key"],
        "step.timestamp": str(int(now.timestamp())),
        "initiator.phid": build.initiator.phid if build.initiator_id else None,
        "buildable.phid": buildable.phid,
        "buildable.object.phid": buildable.object_phid or None,
        "buildable.commit": buildable.commit or None,
        "buildable.ref": buildable.ref or None,
        "buildable.diff": buildable.diff or None,
        "buildable.revision": buildable.revision or None,
        "buildable.base_ref": buildable.base_ref or None,
        "repository.uri": buildable.repository or None,
    }
    for name, value in build.parameters.items():
        variables[f"{PARAMETER_PREFIX}{name}"] = str(value)
    variables.update(approvals or {})
    return variables


def target_variables(target: BuildTarget) -> dict[str, str | None]:
    """The target's snapshot plus ``target.id``, ``target.phid`` and ``target.secret`` (its
    callback secret, derived on each read and never stored: ``builds.secrets``; mask it
    with ``builds.secrets.mask_secrets`` wherever a substituted value is shown)."""
    return {
        **target.variables,
        "target.id": str(target.pk),
        "target.phid": target.phid,
        "target.secret": target_secret(target.phid),
    }


def substitute(
    template: str, variables: dict[str, str | None], escape: Callable[[str], str] = str
) -> str:
    """Replace each ``${name}`` in ``template`` by ``escape(value)``; None becomes "".

    Raises UnknownVariable naming the first variable that is not in ``variables``.
    """

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            raise UnknownVariable(f"No such variable '{name}' in {template!r}.")
        value = variables[name]
        return escape(value) if value is not None else ""

    return VARIABLE.sub(replace, template)


def uri_escape(value: str) -> str:
    """Percent-encode a value for a URI, keeping ``/`` (PHP's rawurlencode but for ``/``)."""
    return quote(value, safe="/")


def is_secret_variable(name: str) -> bool:
    """Whether the variable ``name`` holds a secret: ``target.secret``, or any variable but
    Harbor's public ones whose name looks secret (``build.param.api_token``)."""
    if name in SECRET_VARIABLES:
        return True
    return name not in PUBLIC_VARIABLES and is_sensitive_name(name.removeprefix(PARAMETER_PREFIX))


def secret_values(target: BuildTarget) -> list[str]:
    """The values to mask wherever they appear in what ``target`` shows: its callback
    secret and the values (of at least ``MIN_SECRET_LENGTH`` characters) of its secret
    variables."""
    values = [
        str(value)
        for name, value in (target.variables or {}).items()
        if is_secret_variable(name) and value and len(str(value)) >= MIN_SECRET_LENGTH
    ]
    if target.phid:
        values.append(target_secret(target.phid))
    return values


def mask_variables(variables: Mapping[str, Any], secrets: Collection[str] = ()) -> dict[str, Any]:
    """``variables`` as they may be shown: a secret variable's value replaced by ``MASK``,
    every other value passed through ``builds.secrets.mask_config`` with ``secrets``."""
    return {
        name: MASK if is_secret_variable(name) else mask_config(value, secrets)
        for name, value in variables.items()
    }
