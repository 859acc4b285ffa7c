from django.contrib import admin

from lookout_xero.admin import XeroFunderAdminMixin, XeroLinkInline

from .models import Funder, Organisation


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Funder)
class FunderAdmin(XeroFunderAdminMixin, admin.ModelAdmin):
    list_display = ["name", "organisation", "funder_type", "archived", "email"]
    list_filter = ["organisation", "funder_type", "archived"]
    search_fields = ["name", "email", "first_name", "last_name"]
    list_select_related = ["organisation"]
    # lookout_xero's panel (link state, ContactID, last sync, Push now) on every funder's page.
    inlines = [XeroLinkInline]
