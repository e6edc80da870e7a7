"""Which URLs HTTP steps may reach: the ``HARBOR_HTTP_ALLOWED_URLS`` allow-list.

Each pattern is ``scheme://host[:port]``; ``*`` in the host or the port matches anything
(``fnmatch`` rules: ``*`` also matches dots), and a pattern without a port allows the
scheme's default port only. The default, ``http://*:* https://*:*``, allows any http and
https host. Examples: ``http://127.0.0.1:*`` (any port on this machine),
``https://*.example.com`` (any subdomain, port 443), ``https://ci.example.com:8443``.

Patterns match the host as written in the URL, not the address it resolves to: to keep
plans away from an internal network, list the outside hosts they may reach rather than
trying to exclude internal names. Redirects are checked too (``refuse_disallowed_redirect``
as a ``requests`` response hook), so an allowed host cannot bounce a step elsewhere.
"""

from fnmatch import fnmatchcase
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

DEFAULT_PORTS = {"http": 80, "https": 443}
# url_refusal's answer for a URL with no http(s) origin Harbor can trust (see _origin).
NOT_AN_HTTP_URL = "Harbor may only make HTTP requests to http:// or https:// URLs with a host."


class UrlNotAllowed(requests.exceptions.InvalidURL):
    """The URL's scheme, host or port is not allowed by ``HARBOR_HTTP_ALLOWED_URLS``.

    A ``requests`` exception, so an HTTP step's handling of request errors reports it as a
    failed request with this message.
    """


def shown_origin(url: str) -> str:
    """``url`` fit to show in pages, logs and messages: its scheme, host and port only (a
    path, query or user part may carry a token); its first 40 characters if it has no
    host; "(not a URL)" if it cannot be read as one (an unclosed IPv6 bracket, say)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(not a URL)"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.netloc else url[:40]


def check_url_allowed(url: str) -> None:
    """Raise UrlNotAllowed unless ``url`` matches a pattern of ``HARBOR_HTTP_ALLOWED_URLS``.

    The message names only the URL's scheme, host and port, never its path, query or user
    information, which may carry secrets.
    """
    refusal = url_refusal(url)
    if refusal:
        raise UrlNotAllowed(refusal)


def url_refusal(url: str) -> str | None:
    """Why ``url`` may not be reached, or None if it may: ``NOT_AN_HTTP_URL`` when it has
    no http(s) scheme and host (or parsers could disagree on them), else that it matches
    no pattern."""
    origin = _origin(url)
    if origin is None:
        return NOT_AN_HTTP_URL
    scheme, host, port = origin
    patterns = settings.HARBOR_HTTP_ALLOWED_URLS
    if any(_matches(pattern, scheme, host, port) for pattern in patterns):
        return None
    shown_host = f"[{host}]" if ":" in host else host
    return (
        f"Harbor may not reach {scheme}://{shown_host}:{port}: it matches none of "
        f"HARBOR_HTTP_ALLOWED_URLS ({', '.join(patterns) or 'empty'})."
    )


def refuse_disallowed_redirect(response: requests.Response, *args, **kwargs) -> None:
    """A ``requests`` response hook: raise UrlNotAllowed before a redirect to a URL that is
    not allowed is followed."""
    if response.is_redirect:
        check_url_allowed(urljoin(response.url, response.headers["location"]))


def _origin(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of ``url``, or None when it has none or when parsers could
    disagree on it. The check must see the host the request will really go to: Python's
    ``urlsplit`` reads ``http://127.0.0.1\\.ci.example.com/`` as a host in
    ``ci.example.com`` while urllib3 (under ``requests``) connects to 127.0.0.1, so a URL
    with a backslash or a control character is refused, and urllib3's reading of the host
    must match."""
    url = url.strip()
    if "\\" in url or any(ord(char) < 0x20 or char == "\x7f" for char in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
        connected = parse_url(url)
    except (ValueError, LocationParseError):  # e.g. a port that is not a number
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if (
        _idna(host) != (connected.host or "").lower().strip("[]")
        or (connected.port or port) != port
    ):
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def _idna(host: str) -> str:
    """``host`` as urllib3 writes it (IDNA for non-ASCII names)."""
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return host


def _matches(pattern: str, scheme: str, host: str, port: int) -> bool:
    pattern_scheme, host_pattern, port_pattern = _parse_pattern(pattern)
    return (
        pattern_scheme == scheme
        and fnmatchcase(host, host_pattern)
        and fnmatchcase(str(port), port_pattern or str(DEFAULT_PORTS.get(scheme)))
    )


def _parse_pattern(pattern: str) -> tuple[str, str, str | None]:
    """``(scheme, host pattern, port pattern or None)``; raises ImproperlyConfigured."""
    scheme, separator, rest = pattern.strip().partition("://")
    if not separator or not rest or "/" in rest.rstrip("/") or "@" in rest:
        raise ImproperlyConfigured(
            f"HARBOR_HTTP_ALLOWED_URLS: {pattern!r} is not scheme://host[:port]."
        )
    rest = rest.rstrip("/").lower()
    if rest.startswith("["):  # an IPv6 address, e.g. [::1]:8080
        host, _, after = rest[1:].partition("]")
        port = after[1:] if after.startswith(":") else None
    elif ":" in rest:
        host, _, port = rest.rpartition(":")
    else:
        host, port = rest, None
    return scheme.lower(), host, port
