"""Conduit methods, one module per group; importing this package registers them all."""

from messages_api.conduit.methods import (  # noqa: F401
    artifacts,
    autotargets,
    conduit,
    harbormaster_search,
    legacy,
    sendmessage,
    user,
)
