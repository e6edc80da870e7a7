"""``conduit.*``: ping, the method list generic clients load, and the server's capabilities."""

import socket

from messages_api.conduit import registry
from messages_api.conduit.registry import Call, conduit_method


@conduit_method(
    "conduit.ping",
    "Basic ping for monitoring or a health-check.",
    returns="string",
    requires_auth=False,
)
def ping(call: Call) -> str:
    """The server's host name, as Harbormaster answers."""
    return socket.gethostname()


@conduit_method(
    "conduit.getcapabilities",
    "List capabilities, wire formats, and authentication protocols available on this server.",
    returns="dict<string, any>",
    requires_auth=False,
)
def getcapabilities(call: Call) -> dict:
    """What this server speaks: token authentication, JSON and urlencoded input, JSON output
    (Harbor has no sessions, certificates, signatures or HTML output)."""
    return {
        "authentication": ["token"],
        "signatures": [],
        "input": ["json", "urlencoded"],
        "output": ["json"],
    }


@conduit_method(
    "conduit.query", "Returns the parameters of the Conduit methods.", returns="dict<dict>"
)
def query(call: Call) -> dict:
    """``{method name: {"description", "params": {name: type}, "return"}}`` for every method,
    sorted by name."""
    registry.load_methods()
    return {name: registry.METHODS[name].describe() for name in sorted(registry.METHODS)}
