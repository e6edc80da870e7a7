"""What every page of the web UI shares: sign-in, live-region requests, query strings."""

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

View = Callable[..., HttpResponse]


def sign_in_required(view: View) -> View:
    """Like ``login_required``, but an htmx request from a signed-out browser (a poll after
    the session expired) gets 401 with ``HX-Redirect``, so htmx loads the sign-in page
    instead of swapping the sign-in form into the live region."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if request.headers.get("HX-Request"):
            return _htmx_sign_in(request)
        return redirect_to_login(request.get_full_path())

    return wrapper


def _htmx_sign_in(request: HttpRequest) -> HttpResponse:
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    page = current.path + (f"?{current.query}" if current.query else "") or "/"
    response = HttpResponse("Sign in again.", status=401, content_type="text/plain")
    response["HX-Redirect"] = redirect_to_login(page).url
    return response


def is_partial(request: HttpRequest) -> bool:
    """Whether the request asks for the live region only (``?partial=1``)."""
    return request.GET.get("partial") == "1"


def poll_url(request: HttpRequest, version: str | None = None) -> str:
    """The current URL with ``partial=1`` and, when given, ``v=`` the ``version`` of what
    the live region shows (a log's version, or the build page's section versions): what
    the region polls."""
    query = request.GET.copy()
    query["partial"] = "1"
    query.pop("v", None)
    if version is not None:
        query["v"] = version
    return f"{request.path}?{query.urlencode()}"


def page_query(request: HttpRequest) -> str:
    """The current query string without ``page`` and ``partial``, for pagination links."""
    query = request.GET.copy()
    for name in ("page", "partial"):
        query.pop(name, None)
    return query.urlencode()
