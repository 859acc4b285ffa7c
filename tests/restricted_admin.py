"""URLs of a host whose admin limits its staff to one organisation, through `get_queryset`.

The test of the limit (tests/test_permissions.py) mounts this site beside the demo's admin.
"""

from django.contrib import admin
from django.urls import include, path

from lookout_xero.admin import (
    SyncLogAdmin,
    SyncRunAdmin,
    XeroAlertAdmin,
    XeroConnectionAdmin,
    XeroContactLinkAdmin,
)
from lookout_xero.models import SyncLog, SyncRun, XeroAlert, XeroConnection, XeroContactLink
from project.funders.admin import FunderAdmin, OrganisationAdmin
from project.funders.models import Funder, Organisation

ALLOWED = "Harbour Trust"


def limited(admin_class, organisation_name):
    """The host's way of limiting staff: its admins show one organisation's rows only."""

    class Limited(admin_class):
        def get_queryset(self, request):
            return super().get_queryset(request).filter(**{organisation_name: ALLOWED})

    Limited.__name__ = f"Limited{admin_class.__name__}"
    return Limited


site = admin.AdminSite(name="limited")
site.register(XeroConnection, limited(XeroConnectionAdmin, "organisation__name"))
site.register(XeroContactLink, limited(XeroContactLinkAdmin, "connection__organisation__name"))
site.register(SyncRun, limited(SyncRunAdmin, "connection__organisation__name"))
site.register(SyncLog, limited(SyncLogAdmin, "connection__organisation__name"))
site.register(XeroAlert, limited(XeroAlertAdmin, "connection__organisation__name"))
site.register(Funder, limited(FunderAdmin, "organisation__name"))
site.register(Organisation, limited(OrganisationAdmin, "name"))

urlpatterns = [
    path("limited/", site.urls),
    path("admin/", admin.site.urls),
    path("xero/", include("lookout_xero.urls")),
]
