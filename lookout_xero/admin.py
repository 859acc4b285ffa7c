"""Django admin for the Lookout team: connections, runs, the sync log. No HTTP in here."""

from __future__ import annotations

from django.contrib import admin

from .forms import XeroConnectionForm
from .models import SyncLog, SyncRun, XeroConnection, XeroContactLink


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(XeroConnection)
class XeroConnectionAdmin(admin.ModelAdmin):
    form = XeroConnectionForm
    list_display = ["organisation", "enabled", "state", "xero_tenant_name", "last_synced_at"]
    list_filter = ["enabled", "state"]
    list_select_related = ["organisation"]
    search_fields = ["organisation__name", "xero_tenant_name"]
    readonly_fields = [
        "state",
        "error_message",
        "paused_until",
        "last_synced_at",
        "client_secret_set_at",
    ]


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "connection",
        "trigger",
        "status",
        "in_scope",
        "created",
        "linked",
        "updated",
        "unchanged",
        "conflicts",
        "failed",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "trigger", "connection__organisation"]
    list_select_related = ["connection__organisation"]
    date_hierarchy = "created_at"


@admin.register(SyncLog)
class SyncLogAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "organisation",
        "funder_name",
        "outcome",
        "xero_contact_id",
        "http_status",
        "message",
    ]
    list_filter = ["outcome", "connection__organisation", "created_at"]
    list_select_related = ["connection__organisation"]
    search_fields = ["funder_name", "funder_email", "xero_contact_id"]
    date_hierarchy = "created_at"

    @admin.display(ordering="connection__organisation__name")
    def organisation(self, obj: SyncLog):
        return obj.connection.organisation


@admin.register(XeroContactLink)
class XeroContactLinkAdmin(ReadOnlyAdmin):
    list_display = [
        "funder",
        "connection",
        "state",
        "xero_contact_id",
        "matched_by",
        "last_synced_at",
        "last_error",
    ]
    list_filter = ["state", "matched_by", "connection__organisation"]
    list_select_related = ["funder", "connection__organisation"]
    search_fields = ["xero_contact_id"]
