"""The Conduit method table: each method's name, description, parameter types and handler.

``conduit.query`` returns this table in Harbormaster's shape, which generic clients (the
``phabricator`` package's ``update_interfaces``) parse to learn each method's parameters.
Methods register themselves with ``@conduit_method`` in ``messages_api.conduit.methods``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from messages_api.conduit.errors import CallError


@dataclass(frozen=True)
class Call:
    """One call as a method sees it: parameters with nulls removed (null means absent,
    docs/harbormaster.md §2.1), the authenticated user (None for methods that need none), and
    whether the parameters came JSON-encoded (``strict``) or as plain form strings."""

    method: "Method"
    params: dict[str, Any]
    user: Any
    strict: bool
    request: HttpRequest


@dataclass(frozen=True)
class Method:
    """A Conduit method. ``params`` maps each parameter name to its declared type as
    ``conduit.query`` shows it (``"required string|phid"``, ``"optional list<wild>"``)."""

    name: str
    description: str
    params: dict[str, str]
    returns: str
    handler: Callable[[Call], Any]
    requires_auth: bool = True

    def describe(self) -> dict:
        """This method's ``conduit.query`` entry."""
        return {"description": self.description, "params": self.params, "return": self.returns}


METHODS: dict[str, Method] = {}


def conduit_method(
    name: str,
    description: str,
    params: dict[str, str] | None = None,
    returns: str = "wild",
    requires_auth: bool = True,
) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
    """Register the decorated ``handler(call) -> result`` as Conduit method ``name``."""

    def register(handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
        METHODS[name] = Method(
            name, description, dict(params or {}), returns, handler, requires_auth
        )
        return handler

    return register


def get_method(name: str) -> Method:
    """The method called ``name``; raises CallError as Harbormaster's
    ``ConduitMethodDoesNotExistException`` does."""
    load_methods()
    method = METHODS.get(name)
    if method is None:
        raise CallError(f'Conduit API method "{name}" does not exist.')
    return method


def load_methods() -> None:
    """Import every method module, so each has registered itself."""
    import messages_api.conduit.methods  # noqa: F401
