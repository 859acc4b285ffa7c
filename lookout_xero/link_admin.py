"""Admin views for credentials links, and the connection page's "from the customer" panel.

A link can be made before an organisation has any connection (the customer's submission
creates it, disabled), so besides the connection page's button and the list action there is
a small page that picks an organisation.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods, require_POST

from . import audit, conf, credentials, services, views
from .models import XeroConnection


def make_link(request, organisation) -> None:
    """Create the link and show its URL to this staff member, once."""
    link, path = credentials.create_link(organisation, user=request.user)
    base = conf.get("SITE_URL").rstrip("/")
    url = base + path if base else request.build_absolute_uri(path)
    until = formats.date_format(timezone.localtime(link.expires_at), "j M Y, H:i T")
    messages.success(
        request,
        format_html(
            "Credentials link for {}, valid until {} and for one use. Copy it now and send it to "
            "the customer; it is not shown again. Any earlier link is revoked. "
            '<code data-lx-copy-source>{}</code> <button type="button" class="button" '
            "data-lx-copy>Copy</button>",
            organisation,
            until,
            url,
        ),
    )


@require_POST
def create_for_connection(request, model_admin, object_id):
    if not views.can_manage_credentials(request.user):
        raise PermissionDenied
    connection = views._connection_or_404(request, model_admin, object_id)
    make_link(request, connection.organisation)
    return views._back_to_connection(model_admin, connection)


class OrganisationForm(forms.Form):
    organisation = forms.ModelChoiceField(queryset=None)

    def __init__(self, *args, organisations, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations


def organisations_for(request, model_admin):
    """Organisations this person may make a link for: those the host's organisation admin
    shows them, less any whose connection the connection admin hides from them."""
    organisations = views.visible(request, model_admin.admin_site, conf.organisation_model())
    hidden = XeroConnection.objects.exclude(pk__in=model_admin.get_queryset(request).values("pk"))
    return organisations.exclude(pk__in=hidden.values("organisation_id"))


@require_http_methods(["GET", "POST"])
def create_for_organisation(request, model_admin):
    """Pick an organisation (with or without a connection) and make its link."""
    if not views.can_manage_credentials(request.user):
        raise PermissionDenied
    form = OrganisationForm(
        request.POST or None, organisations=organisations_for(request, model_admin)
    )
    if request.method == "POST" and form.is_valid():
        organisation = form.cleaned_data["organisation"]
        make_link(request, organisation)
        connection = XeroConnection.objects.filter(organisation=organisation).first()
        if connection:
            return views._back_to_connection(model_admin, connection)
        return redirect(f"{model_admin.admin_site.name}:lookout_xero_xeroconnection_changelist")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Create a credentials link",
        "opts": model_admin.model._meta,
        "form": form,
        "hours": conf.get("LINK_HOURS"),
    }
    return TemplateResponse(request, "lookout_xero/admin/credentials_link.html", context)


@require_POST
def use_new_tenant(request, model_admin, object_id):
    """*Use the new Xero organisation*: the connection follows it (and takes the link's
    credentials, when those are what waited)."""
    return _decide(request, model_admin, object_id, services.use_new_tenant)


@require_POST
def discard_new_tenant(request, model_admin, object_id):
    """*Discard*: the connection keeps the Xero organisation it synced with."""
    return _decide(request, model_admin, object_id, services.discard_new_tenant)


def _decide(request, model_admin, object_id, decision):
    if not views.can_manage_credentials(request.user):
        raise PermissionDenied
    # Through the model admin's queryset: a host that limits staff to some organisations
    # keeps them limited here too.
    connection = views._connection_or_404(request, model_admin, object_id)
    tenant_id = request.POST.get("tenant", "")
    if decision(connection.pk, tenant_id=tenant_id, user=request.user):
        if decision is services.use_new_tenant:
            messages.success(request, "The connection now uses the new Xero organisation.")
        else:
            messages.info(request, "Discarded: the connection keeps its Xero organisation.")
    else:
        messages.warning(
            request,
            "Nothing was changed: what waited for confirmation has changed since the page was "
            "shown. Look again below.",
        )
    return views._back_to_connection(model_admin, connection)


def panel(connection: XeroConnection) -> dict:
    """What the connection page shows about links and who did what."""
    return {
        "received_at": connection.credentials_received_at,
        "links": credentials.links_of(connection.organisation),
        "audit": audit.history(connection),
        "extra_scopes": connection.extra_scopes,
        "granted_scopes": connection.granted_scopes.split(),
        "waiting": services.waiting_for_a_person(connection),
    }
