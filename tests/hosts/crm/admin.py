"""The second host's admin, with lookout_xero's panel and action as docs/install.md shows."""

from django.contrib import admin

from lookout_xero.admin import XeroFunderAdminMixin, XeroLinkInline

from .models import Club, Member


@admin.register(Club)
class ClubAdmin(admin.ModelAdmin):
    search_fields = ["title"]


@admin.register(Member)
class MemberAdmin(XeroFunderAdminMixin, admin.ModelAdmin):
    list_display = ["display_name", "club", "kind", "is_archived"]
    inlines = [XeroLinkInline]
