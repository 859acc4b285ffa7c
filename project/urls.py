"""URLs of the demo project: the admin for the Lookout team, lookout_xero's customer pages."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("xero/", include("lookout_xero.urls")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
