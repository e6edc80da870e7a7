"""Build variables and ``${name}`` substitution (spec §5; DESIGN.md §4 "Variables").

A target's variables are snapshotted when the engine creates it; ``target.id``,
``target.phid`` and ``target.secret`` are added when read. Names match ``[a-z0-9._/-]+``;
an unknown name raises ``UnknownVariable``, which fails the target with a clear log line.
Each field escapes the values it receives (a URI encodes them; a command gets them as
environment variables).
"""

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from urllib.parse import quote

from builds.models import Build, BuildTarget
from builds.secrets import target_secret

VARIABLE = re.compile(r"\$\{([a-z0-9._/-]+)\}")
PARAMETER_NAME = re.compile(r"[a-z0-9._/-]+")


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


class UnknownVariable(ValueError):
    """A template names a variable the target does not have."""


def snapshot_variables(build: Build, step: dict, now: datetime) -> dict[str, str | None]:
    """The variables a new target of ``step`` in ``build`` sees (JSON-ready strings)."""
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
        "repository.uri": buildable.repository or None,
    }
    for name, value in build.parameters.items():
        variables[f"build.param.{name}"] = str(value)
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
