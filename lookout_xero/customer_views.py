"""The customer's credentials page: no Lookout login, one link, one use.

Every answer (404s, the rate limit, a CSRF refusal included) is private: not cached, not
indexed, no Referer. Nothing typed into the form is ever sent back.

One exception, on purpose: a page that carries the form says ``Referrer-Policy: same-origin``.
Under ``no-referrer`` a browser posts the form with ``Origin: null`` and no Referer, and
Django's CSRF check on https then refuses every submission. ``same-origin`` sends the Referer
only back to this site, which already knows the link; other sites still get nothing.
"""

from __future__ import annotations

from functools import wraps

from django import forms
from django.conf import settings
from django.http import HttpResponseForbidden, HttpResponsePermanentRedirect
from django.shortcuts import render
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
        if not settings.DEBUG and not request.is_secure():
            response = _https_only(request)
        else:
            response = protected(request, *args, **kwargs)
        for name, value in PRIVATE_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return csrf_exempt(wrapper)


def _https_only(request):
    if request.method in ("GET", "HEAD"):
        return HttpResponsePermanentRedirect(f"https://{request.get_host()}{request.path}")
    return HttpResponseForbidden("This page works over https only.", content_type="text/plain")


def _form_page(request, context, status: int = 200):
    response = render(request, "lookout_xero/customer/form.html", context, status=status)
    response["Referrer-Policy"] = "same-origin"  # see the module's docstring
    return response


def _message(request, status: int, title: str, text: str):
    context = {"title": title, "text": text}
    return render(request, "lookout_xero/customer/message.html", context, status=status)


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


@private_page
@require_http_methods(["GET", "POST"])
@sensitive_variables()  # every local: the form, the result, the link
def credentials_page(request, token):
    link = credentials.find_link(token)
    if link is None:
        return _not_found(request)
    if credentials.is_locked(link):
        return _locked(request)
    context = {"organisation": link.organisation, "form": CredentialsForm(), "reason": ""}
    if request.method == "GET":
        credentials.mark_opened(link)
        return _form_page(request, context)
    form = CredentialsForm(request.POST)
    if not form.is_valid():
        # The unbound form goes back, so nothing typed is echoed.
        context["reason"] = (
            "Fill in the Client ID and the Client Secret (each at most 255 characters)."
        )
        return _form_page(request, context, status=400)
    result = credentials.submit(link, **form.cleaned_data)
    if result.gone:
        return _not_found(request)
    if result.accepted:
        context.update(result=result, needed_scope=credentials.NEEDED_SCOPE)
        return render(request, "lookout_xero/customer/done.html", context)
    link.refresh_from_db(fields=["tries"])
    if credentials.is_locked(link):
        return _locked(request)
    context["reason"] = result.message
    return _form_page(request, context, status=400)
