"""PHIDs: Harbormaster's public identifiers, ``PHID-<TYPE>-`` and 20 random characters.

Outside systems and Harbormaster clients keep using ``${target.phid}`` as a message receiver,
so Harbor issues PHIDs of the same shape (phabricator ``PhabricatorPHID::generateNewPHID``).
"""

import secrets
import string

ALPHABET = string.ascii_lowercase + string.digits

BUILD_PLAN = "HMCP"
BUILD_STEP = "HMCS"
BUILDABLE = "HMBB"
BUILD = "HMBD"
BUILD_TARGET = "HMBT"
ARTIFACT = "HMBA"
USER = "USER"


def new_phid(type_code: str) -> str:
    """Return a new PHID such as ``PHID-HMBT-skbwpnayka2tfhskiwdm`` for ``type_code``."""
    return f"PHID-{type_code}-" + "".join(secrets.choice(ALPHABET) for _ in range(20))


def phid_type(phid: str) -> str | None:
    """Return the four-letter type of a PHID (``HMBT``), or None if it is not PHID-shaped."""
    parts = phid.split("-")
    if len(parts) != 3 or parts[0] != "PHID" or len(parts[2]) != 20:
        return None
    return parts[1]


def phid_field(type_code: str):
    """A unique, indexed CharField that fills itself with a new PHID of ``type_code``."""
    from django.db import models

    return models.CharField(
        max_length=30, unique=True, editable=False, default=PhidDefault(type_code)
    )


class PhidDefault:
    """A picklable, migration-serialisable default callable producing PHIDs of one type."""

    def __init__(self, type_code: str):
        self.type_code = type_code

    def __call__(self) -> str:
        return new_phid(self.type_code)

    def deconstruct(self):
        return ("builds.phids.PhidDefault", (self.type_code,), {})

    def __eq__(self, other):
        return isinstance(other, PhidDefault) and other.type_code == self.type_code
