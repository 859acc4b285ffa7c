"""Pages lookout_xero serves outside the admin. Mount them in the host's URLconf, e.g.
``path("xero/", include("lookout_xero.urls"))``."""

from django.urls import path

from . import customer_views

app_name = "lookout_xero"

urlpatterns = [
    path("credentials/<str:token>/", customer_views.credentials_page, name="credentials"),
]
