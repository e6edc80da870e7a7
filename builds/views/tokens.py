"""The API token page: users create tokens (shown once) and revoke their own."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import tokens
from builds.views.common import sign_in_required

# The session key holding a new token's clear text until the page after the redirect shows
# it, once (post/redirect/get, so a reload never creates a second token).
NEW_TOKEN_KEY = "harbor_new_api_token"


class TokenForm(forms.Form):
    """A new token's name, to tell tokens apart later."""

    name = forms.CharField(max_length=200, help_text="What will use it, e.g. “jenkins”.")


@require_http_methods(["GET", "HEAD", "POST"])
@sign_in_required
def token_list(request: HttpRequest) -> HttpResponse:
    """GET: the user's tokens, and a new one's clear text once after creating it.
    POST: create a token named by the form and come back here to show it."""
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        row, clear = tokens.create_token(request.user, form.cleaned_data["name"])
        request.session[NEW_TOKEN_KEY] = {"id": row.pk, "name": row.name, "token": clear}
        return redirect("token-list")
    context = {
        "form": form,
        "tokens": tokens.tokens_of(request.user),
        "new_token": request.session.pop(NEW_TOKEN_KEY, None),
    }
    return render(request, "builds/token_list.html", context, status=400 if form.errors else 200)


@require_http_methods(["POST"])
@sign_in_required
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke the user's own token ``pk``; someone else's or an already revoked one is
    left alone with a message saying so."""
    if tokens.revoke_token(request.user, pk):
        messages.success(request, "Token revoked: requests using it are refused from now on.")
    else:
        messages.error(request, "No such active token of yours.")
    return redirect("token-list")
