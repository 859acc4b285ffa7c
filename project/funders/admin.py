from django.contrib import admin

from .models import Funder, Organisation


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Funder)
class FunderAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "funder_type", "archived", "email"]
    list_filter = ["organisation", "funder_type", "archived"]
    search_fields = ["name", "email", "first_name", "last_name"]
    list_select_related = ["organisation"]
