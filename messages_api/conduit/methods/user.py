"""``user.whoami``: who the token belongs to."""

from django.conf import settings

from messages_api.conduit.registry import Call, conduit_method


@conduit_method(
    "user.whoami",
    "Retrieve information about the logged-in user.",
    returns="nonempty dict<string, wild>",
)
def whoami(call: Call) -> dict:
    """The caller as Phabricator describes a user: ``phid``, ``userName``, ``realName``,
    ``image``, ``uri``, ``roles``, ``primaryEmail``."""
    user = call.user
    roles = ["verified", "approved", "activated"]
    if user.is_superuser:
        roles.insert(0, "admin")
    return {
        "phid": user.phid,
        "userName": user.username,
        "realName": user.get_full_name() or user.username,
        "image": None,
        "uri": settings.HARBOR_BASE_URL + "/",
        "roles": roles,
        "primaryEmail": user.email or None,
    }
