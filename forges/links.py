"""Links from a buildable to its forge's web pages: the commit, the ref (branch or tag) and
the pull (merge) request.

The forge is the one the buildable came from (``Buildable.forge`` in ``HARBOR_FORGES``), or
the one its repository URL names: a configured forge's host, or GitHub, GitLab, Codeberg or
gitea.com. A repository on any other host, or none, gives no links (the page shows the text).
Each forge type spells its pages differently (GitHub ``/commit/<sha>``, GitLab
``/-/commit/<sha>``, Gitea ``/commit/<sha>`` and ``/src/branch/<name>``).
"""

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from django.conf import settings

from forges.config import Forge

# Hosts whose forge type is known without configuration.
KNOWN_HOSTS = {
    "github.com": "github",
    "gitlab.com": "gitlab",
    "codeberg.org": "gitea",
    "gitea.com": "gitea",
}
# An scp-like git address: git@host:owner/repo.git
SCP = re.compile(r"^[\w.-]+@([\w.-]+):(.+)$")
# How each forge type spells a page of repository ``{repo}`` under ``{web}``.
PAGES = {
    "github": {
        "commit": "{web}/{repo}/commit/{value}",
        "branch": "{web}/{repo}/tree/{value}",
        "tag": "{web}/{repo}/tree/{value}",
        "pull": "{web}/{repo}/pull/{value}",
    },
    "gitlab": {
        "commit": "{web}/{repo}/-/commit/{value}",
        "branch": "{web}/{repo}/-/tree/{value}",
        "tag": "{web}/{repo}/-/tree/{value}",
        "pull": "{web}/{repo}/-/merge_requests/{value}",
    },
    "gitea": {
        "commit": "{web}/{repo}/commit/{value}",
        "branch": "{web}/{repo}/src/branch/{value}",
        "tag": "{web}/{repo}/src/tag/{value}",
        "pull": "{web}/{repo}/pulls/{value}",
    },
}


@dataclass(frozen=True)
class Place:
    """A repository on a forge: the forge's ``type``, its web ``web`` URL (scheme and host,
    maybe a path) and the repository's path there (``acme/widgets``)."""

    type: str
    web: str
    repository: str

    def page(self, kind: str, value: str) -> str:
        """The URL of the ``kind`` page (commit, branch, tag, pull) for ``value``."""
        safe = quote(value, safe="/")
        return PAGES[self.type][kind].format(web=self.web, repo=self.repository, value=safe)


def web_url(forge: Forge) -> str:
    """A configured forge's web address from its API URL (``https://api.github.com`` →
    ``https://github.com``; ``https://host/api/v4`` → ``https://host``)."""
    if forge.url.rstrip("/") == "https://api.github.com":
        return "https://github.com"
    return re.sub(r"/api/v\d+/?$", "", forge.url.rstrip("/"))


def place_of(buildable) -> Place | None:
    """Where ``buildable``'s repository is on a forge, or None when that is unknown."""
    configured = settings.HARBOR_FORGES.get(buildable.forge) if buildable.forge else None
    if configured is not None and buildable.forge_repository:
        return Place(configured.type, web_url(configured), buildable.forge_repository)
    return place_from_url(buildable.repository)


def place_from_url(repository: str) -> Place | None:
    """The forge and path an http(s) or scp-like repository URL names, when its host is a
    configured forge's or a known one (``KNOWN_HOSTS``), else None."""
    scp = SCP.match(repository or "")
    if scp:
        host, path, scheme = scp.group(1), scp.group(2), "https"
    else:
        parts = urlsplit(repository or "")
        if parts.scheme not in ("http", "https", "ssh", "git") or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
        scheme = parts.scheme if parts.scheme in ("http", "https") else "https"
    path = path.strip("/").removesuffix(".git")
    kind, web = forge_for_host(host, scheme)
    if kind is None or path.count("/") < 1:
        return None
    return Place(kind, web, path)


def forge_for_host(host: str, scheme: str) -> tuple[str | None, str]:
    """The forge type at ``host`` and its web address: a configured forge's, else a known
    host's; (None, "") when neither."""
    for forge in settings.HARBOR_FORGES.values():
        web = web_url(forge)
        if urlsplit(web).hostname == host:
            return forge.type, web
    return KNOWN_HOSTS.get(host), f"{scheme}://{host}"


def ref_page(place: Place, ref: str) -> str:
    """The page of ``ref`` (``refs/heads/main``, ``refs/tags/v1``, or a bare branch name)."""
    if ref.startswith("refs/tags/"):
        return place.page("tag", ref.removeprefix("refs/tags/"))
    return place.page("branch", ref.removeprefix("refs/heads/"))


def links(buildable) -> dict[str, str]:
    """``{"commit", "ref", "revision"}`` → URL, for those the buildable has and its forge
    is known; empty when the forge is unknown. A ref that is not a branch or a tag (e.g. a
    pull request's ``refs/pull/…``) gets no link."""
    place = place_of(buildable)
    if place is None:
        return {}
    found = {}
    if buildable.commit:
        found["commit"] = place.page("commit", buildable.commit)
    if buildable.ref and not buildable.ref.startswith(("refs/pull/", "refs/merge-requests/")):
        found["ref"] = ref_page(place, buildable.ref)
    if buildable.revision:
        found["revision"] = place.page("pull", buildable.revision)
    return found
