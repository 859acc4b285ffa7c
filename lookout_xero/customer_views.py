"""The customer's credentials page: no Lookout login, one link, one use.

Every answer (404s, the rate limit, a CSRF refusal included) is private: not cached, not
indexed, no Referer. Nothing typed into the form is ever sent back.

One exception, on purpose: a page that carries the form says ``Referrer-Policy: same-origin``.
Under ``no-referrer`` a browser posts the form with ``Origin: null`` and no Referer, and
Django's CSRF check on https then refuses every submission. ``same-origin`` sends the Referer
only back to this site, which already knows the link; other sites still get nothing.

The link's token leaves the address bar at once, as in Django's own password reset
(`PasswordResetConfirmView`): opening the link puts the token in the session and redirects to
an address without it, so access logs, 4xx log lines and the browser's history show it once
at most. Each browser that opens the link gets its own session, so the same link still works
on another device while it is unspent.

These pages carry their own framing and content policies (`X-Frame-Options: DENY`, a
``Content-Security-Policy`` with ``frame-ancestors 'none'``, no script at all and this
response's nonce for the one inline stylesheet), whatever the host's middleware would add:
Django's middlewares leave a header a view has set alone.
"""

from __future__ import annotations

import secrets
from functools import wraps

from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponseForbidden, HttpResponsePermanentRedirect
from django.shortcuts import redirect, render
from django.utils.crypto import salted_hmac
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from . import conf, credentials

FIELDS = ("client_id", "client_secret", "webhook_key")
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}
# Nothing may frame these pages, run a script, or load anything but this response's own style.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# Where the session keeps the tokens of the links this browser opened, by their page's handle.
SESSION_KEY = "lookout_xero.credentials_links"
LINKS_PER_SESSION = 5


class CredentialsForm(forms.Form):
    client_id = forms.CharField(max_length=255)
    client_secret = forms.CharField(max_length=255)
    webhook_key = forms.CharField(max_length=255, required=False)


def private_page(view):
    """Private headers on every answer; https only when DEBUG is off; CSRF checked inside.

    The view is exempt from the CSRF middleware and protected here instead, so that even the
    CSRF refusal goes out with the private headers.
    """
    protected = csrf_protect(sensitive_post_parameters(*FIELDS)(view))

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        request.lx_style_nonce = secrets.token_urlsafe(16)
        if not settings.DEBUG and not request.is_secure():
            response = _https_only(request)
        else:
            response = protected(request, *args, **kwargs)
        for name, value in PRIVATE_HEADERS.items():
            response.headers.setdefault(name, value)
        # Set, not defaulted: a host that allows framing or scripts elsewhere does not here.
        response["X-Frame-Options"] = "DENY"
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(
            nonce=request.lx_style_nonce
        )
        return response

    return csrf_exempt(wrapper)


def _https_only(request):
    if request.method in ("GET", "HEAD"):
        return HttpResponsePermanentRedirect(f"https://{request.get_host()}{request.path}")
    return HttpResponseForbidden("This page works over https only.", content_type="text/plain")


def _render(request, template: str, context: dict, status: int = 200):
    context = {**context, "style_nonce": request.lx_style_nonce}
    return render(request, f"lookout_xero/customer/{template}", context, status=status)


def _form_page(request, context, status: int = 200):
    response = _render(request, "form.html", context, status=status)
    response["Referrer-Policy"] = "same-origin"  # see the module's docstring
    return response


def _message(request, status: int, title: str, text: str):
    return _render(request, "message.html", {"title": title, "text": text}, status=status)


def _not_found(request):
    # The same answer for every dead link: it says nothing about whose link it was.
    return _message(
        request,
        404,
        "This link does not work",
        "It may have expired or been used already. Ask your Lookout contact for a new one.",
    )


def _locked(request):
    return _message(
        request,
        429,
        "Too many tries",
        f"This link was refused {conf.get('LINK_MAX_TRIES')} times and accepts no more. "
        "Ask your Lookout contact for a new link.",
    )


def _handle(token: str) -> str:
    """The token-free address's part for one link: names it in this session, opens nothing."""
    return salted_hmac("lookout_xero.credentials_page", token, algorithm="sha256").hexdigest()[:32]


def _remember(request, token: str) -> str:
    if not hasattr(request, "session"):
        raise ImproperlyConfigured(
            "The customer's credentials page keeps the link's token in the session: add "
            "django.contrib.sessions.middleware.SessionMiddleware to MIDDLEWARE."
        )
    handle = _handle(token)
    links = dict(request.session.get(SESSION_KEY) or {})
    links.pop(handle, None)
    links[handle] = token
    request.session[SESSION_KEY] = dict(list(links.items())[-LINKS_PER_SESSION:])
    return handle


def _forget(request, handle: str) -> None:
    links = dict(request.session.get(SESSION_KEY) or {})
    if links.pop(handle, None) is not None:
        request.session[SESSION_KEY] = links


@private_page
@require_http_methods(["GET", "POST"])
@sensitive_variables()  # every local: the form, the result, the link, the token
def credentials_page(request, token):
    """The link as sent. Opening it moves the token into the session and away from the URL.

    A POST is still answered here: a page opened before the token left the URL posts back to
    it, and answering costs nothing the token did not already give.
    """
    link = credentials.find_link(token)
    if link is None:
        return _not_found(request)
    if credentials.is_locked(link):
        return _locked(request)
    if request.method == "POST":
        return _the_form(request, link, handle=None)
    credentials.mark_opened(link)
    return redirect("lookout_xero:credentials_form", _remember(request, token))


@private_page
@require_http_methods(["GET", "POST"])
@sensitive_variables("form", "token")
def credentials_form(request, handle):
    """The form, at an address without the token: the session says which link it is."""
    token = (getattr(request, "session", {}).get(SESSION_KEY) or {}).get(handle)
    link = credentials.find_link(token) if token else None
    if link is None:
        _forget(request, handle)
        return _not_found(request)
    if credentials.is_locked(link):
        return _locked(request)
    return _the_form(request, link, handle=handle)


@sensitive_variables("form", "result")
def _the_form(request, link, *, handle: str | None):
    context = {
        "organisation": link.organisation,
        "form": CredentialsForm(),
        "reason": "",
        "client_id": "",
        # Whether what Xero accepts is used at once (the form's last words must say which).
        "sync_on": credentials.sync_is_on(link.organisation_id),
    }
    if request.method != "POST":
        return _form_page(request, context)
    form = CredentialsForm(request.POST)
    # The Client ID is not a secret (Xero shows it on the app's page): a refused try keeps it,
    # so the customer fixes the secret only. The secret and the webhook key are never echoed.
    client_id = form.data.get("client_id", "")
    context["client_id"] = client_id.strip() if len(client_id) <= 255 else ""
    if not form.is_valid():
        # The unbound form goes back: nothing typed but the Client ID is echoed.
        context["reason"] = (
            "Fill in the Client ID and the Client Secret (each at most 255 characters)."
        )
        return _form_page(request, context, status=400)
    result = credentials.submit(link, **form.cleaned_data)
    if result.gone:
        if handle:
            _forget(request, handle)
        return _not_found(request)
    if result.locked:
        return _locked(request)
    if result.accepted:
        if handle:
            _forget(request, handle)  # spent: the session need not keep it
        context.update(result=result, needed_scope=credentials.NEEDED_SCOPE)
        return _render(request, "done.html", context)
    link.refresh_from_db(fields=["tries"])
    if credentials.is_locked(link):
        return _locked(request)
    context["reason"] = result.message
    return _form_page(request, context, status=400)
