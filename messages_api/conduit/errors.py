"""Conduit's error codes, raised by methods and the transport and written into the envelope.

Harbormaster raises plain exceptions from method bodies (``ERR-CONDUIT-CORE``) and
``ConduitException`` from the framework (``ERR-CONDUIT-CALL``); authentication failures use
their own codes (``PhabricatorConduitAPIController``, docs/harbormaster.md §6.2).
"""

CORE = "ERR-CONDUIT-CORE"
CALL = "ERR-CONDUIT-CALL"
INVALID_AUTH = "ERR-INVALID-AUTH"
INVALID_SESSION = "ERR-INVALID-SESSION"


class ConduitError(Exception):
    """A call that fails with ``error_code`` and ``error_info`` (HTTP 200, ``result`` null)."""

    code = CORE

    def __init__(self, info: str, code: str | None = None):
        super().__init__(info)
        self.info = info
        if code is not None:
            self.code = code


class CoreError(ConduitError):
    """What a method body refuses: ``ERR-CONDUIT-CORE``."""

    code = CORE


class CallError(ConduitError):
    """A malformed call (unknown method or parameter, missing keys): ``ERR-CONDUIT-CALL``."""

    code = CALL
