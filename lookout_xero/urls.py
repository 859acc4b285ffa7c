"""Pages lookout_xero serves outside the admin: the customer's credentials page and the
endpoint for Xero's webhooks. Mount them in the host's URLconf, e.g.
``path("xero/", include("lookout_xero.urls"))``."""

from django.urls import path

from . import customer_views, webhook_views

app_name = "lookout_xero"

urlpatterns = [
    path(
        "credentials/page/<str:handle>/",
        customer_views.credentials_form,
        name="credentials_form",
    ),
    path("credentials/<str:token>/", customer_views.credentials_page, name="credentials"),
    path("webhooks/<str:webhook_id>/", webhook_views.receive, name="webhook"),
]
