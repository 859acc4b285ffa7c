"""Django admin for the Lookout team: connections, runs, the sync log, conflicts, funder panels.

No HTTP in here: actions and buttons enqueue work through `services` (via `views`), and the
Client Secret is write-only.
"""

from __future__ import annotations

from functools import update_wrapper

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator, capfirst
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from . import audit, conf, link_admin, services, status, views, wording
from .fields import UndecryptableError
from .forms import XeroConnectionForm
from .models import (
    OutboxEntry,
    SyncLog,
    SyncRun,
    XeroAlert,
    XeroConnection,
    XeroContactLink,
)
from .services.calls import record_undecryptable

ADMIN_CSS = {"all": ["lookout_xero/admin.css"]}
ADMIN_JS = ["lookout_xero/admin.js"]
CREDENTIALS_HEADING = "Xero custom connection"

ENCRYPTED_FIELDS = ("client_id", "client_secret", "access_token", "webhook_key")
# The same, on a row's connection: lists that show none of them neither load nor decrypt them.
CONNECTION_CREDENTIALS = tuple(f"connection__{name}" for name in ENCRYPTED_FIELDS)
# What the connection form posts that an error report must show as stars.
SECRET_POST_FIELDS = ("client_secret", "webhook_key")
RUN_BADGES = {
    SyncRun.Status.PENDING: "syncing",
    SyncRun.Status.RUNNING: "syncing",
    SyncRun.Status.COMPLETED: "healthy",
    SyncRun.Status.CANCELLED: "disabled",
    SyncRun.Status.FAILED: "error",
}
OUTCOME_BADGES = {
    SyncLog.Outcome.CREATED: "healthy",
    SyncLog.Outcome.LINKED: "healthy",
    SyncLog.Outcome.UPDATED: "healthy",
    SyncLog.Outcome.RESTORED: "healthy",
    SyncLog.Outcome.CONFLICT: "paused",
    SyncLog.Outcome.RETRYING: "paused",
    SyncLog.Outcome.PAUSED: "paused",
    SyncLog.Outcome.FAILED: "error",
    SyncLog.Outcome.CONNECTION_ERROR: "error",
    SyncLog.Outcome.RUN: "syncing",
}
LINK_BADGES = {
    XeroContactLink.State.SYNCED: "healthy",
    XeroContactLink.State.PENDING: "syncing",
    XeroContactLink.State.CONFLICT: "paused",
    XeroContactLink.State.FAILED: "error",
    XeroContactLink.State.ARCHIVED_IN_XERO: "paused",
    XeroContactLink.State.GDPR_REQUEST: "paused",
}


def badge(key: str, words: str):
    """A coloured badge that always carries its meaning in words."""
    return format_html('<span class="lx-badge lx-badge--{}">{}</span>', key, words)


def cut(text) -> str:
    """A name that may be long: one line, cut by CSS to its column, the whole of it on hover.

    CSS (not a character count) decides where it ends, so nothing is cut that fits.
    """
    text = str(text)
    return format_html('<span class="lx-cut" title="{}">{}</span>', text, text)


def when_column(name: str, description: str):
    """A date column (or read-only field) in the one date format (`wording.DATE_FORMAT`)."""

    @admin.display(description=description, ordering=name)
    def show(self, obj):
        return wording.when(getattr(obj, name))

    return show


def xero_contact_link(contact_id: str, *, short: bool = False):
    """The ContactID, opening the contact in Xero in a new tab."""
    if not contact_id:
        return "—"
    return format_html(
        '<a href="{}" target="_blank" rel="noopener" title="Open {} in Xero">{}</a>',
        views.xero_contact_url(contact_id),
        contact_id,
        f"{contact_id[:8]}…" if short and len(contact_id) > 9 else contact_id,
    )


def organisation_filter() -> str:
    """The list filter's query parameter for one organisation, whatever the host's key is."""
    return f"connection__organisation__{conf.organisation_model()._meta.pk.name}__exact"


def run_label(run: SyncRun) -> str:
    return f"{'Preview' if run.dry_run else 'Full sync'} #{run.pk}"


def _admin_urls(model_admin, views_by_suffix: dict) -> list:
    """URL patterns for `views` functions, each behind the admin's login, staff and CSRF checks."""
    opts = model_admin.model._meta
    patterns = []
    for route, (view, suffix) in views_by_suffix.items():

        def bound(request, *args, _view=view, **kwargs):
            return _view(request, model_admin, *args, **kwargs)

        wrapped = model_admin.admin_site.admin_view(update_wrapper(bound, view))
        patterns.append(path(route, wrapped, name=f"{opts.app_label}_{opts.model_name}_{suffix}"))
    return patterns


def _count_per_connection(model, **filters):
    """A correlated count, so the list needs one query however many rows it shows."""
    counts = (
        model.objects.filter(connection=OuterRef("pk"), **filters)
        .order_by()
        .values("connection")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


def parent_actions(get_actions, request, action_location):
    """The parent ModelAdmin's actions, on every supported Django.

    Django 6.1 asks for the actions of one place (`action_location`: the change list or a change
    form) and deprecates overrides without that argument; 5.2 and 6.0 have no such argument.
    """
    if action_location is None:
        return get_actions(request)
    return get_actions(request, action_location=action_location)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the sync writes: never added, changed or deleted by hand.

    The delete permission itself stays Django's, because the admin also asks it when a funder,
    organisation or connection is deleted and these rows go with it (their CASCADE).
    """

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request, action_location=None):
        actions = parent_actions(super().get_actions, request, action_location)
        actions.pop("delete_selected", None)
        return actions

    def render_change_form(self, request, context, *args, **kwargs):
        context["show_delete"] = False
        return super().render_change_form(request, context, *args, **kwargs)

    def delete_view(self, request, object_id, extra_context=None):
        raise PermissionDenied


class OrganisationColumn:
    """The row's organisation, sorted by the host's name field (`ORGANISATION_NAME_FIELD`).

    The rows come with their connection and organisation, but not the connection's
    credentials: these pages show none, and a key that cannot decrypt them is one of the
    troubles they are read for, so they must open even then.
    """

    def get_queryset(self, request):
        # The organisation's name, for sorting the column: its field is a setting, read now.
        name = F(conf.organisation_name_lookup("connection__organisation"))
        return (
            super()
            .get_queryset(request)
            .select_related("connection__organisation")
            .defer(*CONNECTION_CREDENTIALS)
            .annotate(lx_organisation_name=name)
        )

    @admin.display(ordering="lx_organisation_name")
    def organisation(self, obj):
        return cut(obj.connection.organisation)


class OrganisationFilter(admin.RelatedFieldListFilter):
    """Offers the organisations the host's organisation admin shows this person, not all."""

    def field_choices(self, field, request, model_admin):
        visible = views.visible(request, model_admin.admin_site, field.related_model)
        return field.get_choices(
            include_blank=False,
            ordering=self.field_admin_ordering(field, request, model_admin),
            limit_choices_to={"pk__in": visible.values("pk")},
        )


BY_ORGANISATION = ("connection__organisation", OrganisationFilter)


def with_funders(model_admin, request, queryset, found, search_term):
    """The rows the list's own search `found`, and the rows of the funders a person means
    (by name, e-mail or ContactNumber, `views.funders_matching`)."""
    if not search_term.strip():
        return found
    funders = views.funders_matching(request, model_admin.admin_site, search_term)
    return found | queryset.filter(funder__in=funders)


# --- connections ----------------------------------------------------------------------------


class NeedsAttentionFilter(admin.SimpleListFilter):
    """Exactly what the alerts and `xero_status` call needing attention (`status`)."""

    title = "needs attention"
    parameter_name = "needs_attention"

    def lookups(self, request, model_admin):
        return [("yes", "Needs attention"), ("no", "Does not")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status.needs_attention_q())
        if self.value() == "no":
            return queryset.exclude(status.needs_attention_q())
        return queryset


@admin.register(XeroConnection)
class XeroConnectionAdmin(admin.ModelAdmin):
    form = XeroConnectionForm
    change_form_template = "lookout_xero/admin/connection_change_form.html"
    change_list_template = "lookout_xero/admin/connection_change_list.html"
    list_display = [
        "organisation",
        "status_badge",
        "xero_organisation",
        "last_sync",
        "pending",
        "conflicts",
        "failed",
        "calls_left",
        "scopes_flag",
    ]
    list_filter = [NeedsAttentionFilter, "enabled", "state"]
    list_select_related = ["organisation"]
    actions = ["sync_now", "retry_failed", "create_credentials_link"]

    class Media:
        css = ADMIN_CSS
        js = ADMIN_JS

    def get_search_fields(self, request):
        return [conf.organisation_name_lookup("organisation"), "xero_tenant_name"]

    def log_addition(self, request, obj, message):
        """`audit.connection_saved` writes the one row of a save, in words."""

    def log_change(self, request, obj, message):
        """`audit.connection_saved` writes the one row of a save, in words."""

    def get_queryset(self, request):
        active_run = SyncRun.objects.full_syncs().active().filter(connection=OuterRef("pk"))
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if match and match.url_name == "lookout_xero_xeroconnection_changelist":
            # The list shows no credentials: do not load, or decrypt, them for every row.
            queryset = queryset.defer(*ENCRYPTED_FIELDS)
        return queryset.annotate(
            lx_pending=_count_per_connection(OutboxEntry),
            lx_conflicts=_count_per_connection(
                XeroContactLink, state=XeroContactLink.State.CONFLICT
            ),
            lx_failed=_count_per_connection(XeroContactLink, state=XeroContactLink.State.FAILED),
            lx_running=Exists(active_run),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The page the alert e-mail links to: with a key FERNET_KEYS lacks, its form cannot be
        # built, so say what is wrong on the list, where the connection shows as Error.
        try:
            return super().change_view(request, object_id, form_url, extra_context)
        except UndecryptableError as exc:
            record_undecryptable(unquote(object_id), exc)
            self.message_user(request, str(exc), messages.ERROR)
            return redirect(f"{self.admin_site.name}:lookout_xero_xeroconnection_changelist")

    def get_urls(self):
        return [
            *_admin_urls(
                self,
                {
                    "test-connection/": (views.test_connection, "test_connection"),
                    "<path:object_id>/status/": (views.connection_status, "status"),
                    "<path:object_id>/preview/": (views.start_preview, "preview"),
                    "<path:object_id>/preview/<int:run_id>/": (
                        views.preview_status,
                        "preview_status",
                    ),
                    "<path:object_id>/sync-now/": (views.sync_now, "sync_now"),
                    "<path:object_id>/retry-failed/": (views.retry_failed, "retry_failed"),
                    "<path:object_id>/cancel-run/": (views.cancel_run, "cancel_run"),
                    "<path:object_id>/directions/": (views.set_directions, "directions"),
                    "credentials-link/": (
                        link_admin.create_for_organisation,
                        "credentials_link_new",
                    ),
                    "<path:object_id>/credentials-link/": (
                        link_admin.create_for_connection,
                        "credentials_link",
                    ),
                    "<path:object_id>/use-new-tenant/": (
                        link_admin.use_new_tenant,
                        "use_new_tenant",
                    ),
                    "<path:object_id>/discard-new-tenant/": (
                        link_admin.discard_new_tenant,
                        "discard_new_tenant",
                    ),
                },
            ),
            *super().get_urls(),
        ]

    # Credentials and the switch: only for people with the credentials permission.

    def has_add_permission(self, request) -> bool:
        # A connection cannot exist without credentials.
        return super().has_add_permission(request) and views.can_manage_credentials(request.user)

    @method_decorator(sensitive_post_parameters(*SECRET_POST_FIELDS))
    @method_decorator(sensitive_variables())
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """The add and change pages: an error report shows none of the secrets they handle."""
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_fieldsets(self, request, obj=None):
        if not views.can_manage_credentials(request.user):
            return [
                (
                    None,
                    {
                        "fields": ["organisation"],
                        "description": "The credentials and the Enabled switch are shown only "
                        "to people allowed to manage Xero credentials.",
                    },
                )
            ]
        secret, key = "client_secret", "webhook_key"
        if self._read_only(request, obj):
            secret, key = "client_secret_set", "webhook_key_set"
        return [
            (None, {"fields": ["organisation"]}),
            (CREDENTIALS_HEADING, {"fields": ["client_id", secret, "scope", key]}),
            ("Sync", {"fields": ["enabled"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        # Moving a connection to another organisation would sync the wrong funders.
        if self._read_only(request, obj):
            # Django shows a read-only field's value, here the decrypted secret: show these.
            return ["organisation", "client_secret_set", "webhook_key_set"]
        return ["organisation"] if obj else []

    def _read_only(self, request, obj) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    @admin.display(description="Client Secret")
    def client_secret_set(self, obj) -> str:
        if obj.client_secret_set_at:
            when = timezone.localtime(obj.client_secret_set_at)
            return f"set on {formats.date_format(when, 'j M Y, H:i T')}"
        return "set" if obj.client_secret else "not set"

    @admin.display(description="Webhook key")
    def webhook_key_set(self, obj) -> str:
        return "set" if obj.webhook_key else "not set"

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a connection drops its credentials: the credentials' permission is needed too.
        return super().has_delete_permission(request, obj) and views.can_manage_credentials(
            request.user
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        manager = views.can_manage_credentials(request.user)
        context.update(
            lx_can_manage=manager,
            lx_can_operate=views.can_operate(request.user),
            lx_credentials_heading=CREDENTIALS_HEADING,
            lx_status=status.summary(obj) if obj else None,
            lx_credentials=link_admin.panel(obj) if obj and manager else None,
            lx_urls=self._page_urls(obj),
            lx_webhook=self._webhook(request, obj) if obj else None,
            lx_directions=[
                {"field": field, "direction": direction}
                for field, direction in services.directions_of(obj).items()
            ]
            if obj
            else [],
            lx_direction_choices=list(wording.DIRECTION_LABELS.items()),
        )
        if obj and not manager:
            # Nothing on the form is theirs to change.
            context.update(
                show_save=False, show_save_and_continue=False, show_save_and_add_another=False
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _webhook(self, request, obj) -> dict:
        """The webhook URL to paste into Xero, and what the bookkeeper's changes did."""
        facts = status.webhook_facts(obj)
        base = conf.get("SITE_URL").rstrip("/")
        path = facts["path"]
        facts["url"] = (base + path if base else request.build_absolute_uri(path)) if path else ""
        links = reverse(f"{self.admin_site.name}:lookout_xero_xerocontactlink_changelist")
        facts["links"] = f"{links}?connection__organisation__id__exact={obj.organisation_id}"
        return facts

    def _page_urls(self, obj) -> dict:
        site = self.admin_site.name
        urls = {
            "test": reverse(f"{site}:lookout_xero_xeroconnection_test_connection"),
            "conflicts": reverse(f"{site}:lookout_xero_xerocontactlink_conflicts"),
            "log": reverse(f"{site}:lookout_xero_synclog_changelist"),
            "runs": reverse(f"{site}:lookout_xero_syncrun_changelist"),
            "alerts": reverse(f"{site}:lookout_xero_xeroalert_changelist"),
        }
        if obj is None:
            return urls
        for key, name in [
            ("status", "status"),
            ("preview", "preview"),
            ("sync_now", "sync_now"),
            ("retry_failed", "retry_failed"),
            ("cancel", "cancel_run"),
            ("directions", "directions"),
            ("credentials_link", "credentials_link"),
            ("use_new_tenant", "use_new_tenant"),
            ("discard_new_tenant", "discard_new_tenant"),
        ]:
            urls[key] = reverse(f"{site}:lookout_xero_xeroconnection_{name}", args=[obj.pk])
        urls["conflicts"] += f"?connection={obj.pk}"
        by_organisation = f"{organisation_filter()}={obj.organisation_id}"
        urls["log"] += f"?{by_organisation}"
        urls["runs"] += f"?{by_organisation}"
        urls["alerts"] += f"?{by_organisation}"
        urls["failed"] = reverse(f"{site}:lookout_xero_xerocontactlink_changelist") + (
            f"?state__exact=failed&{by_organisation}"
        )
        return urls

    def get_deleted_objects(self, objs, request):
        """A count per kind of row, not a line per row: a connection has thousands of log rows."""
        connections = list(objs)
        model_count = {self.model._meta.verbose_name_plural: len(connections)}
        for relation in self.model._meta.related_objects:
            if relation.on_delete is models.CASCADE:
                related = relation.related_model
                count = related._base_manager.filter(
                    **{f"{relation.field.name}__in": connections}
                ).count()
                if count:
                    model_count[related._meta.verbose_name_plural] = count
        summary = [str(connection) for connection in connections]
        summary += [f"{capfirst(name)}: {count}" for name, count in list(model_count.items())[1:]]
        return summary, model_count, set(), []

    def save_model(self, request, obj, form, change) -> None:
        if "enabled" in form.changed_data:
            request.lx_switched = "on" if obj.enabled else "off"
        if not change:
            obj.save()
        else:
            # Only what the person changed: the rest of a form opened minutes ago is stale, and
            # the sync's own fields (a lease, a pause, a token) must not be written back.
            fields = {f.name for f in obj._meta.concrete_fields}
            obj.save(update_fields=[name for name in form.changed_data if name in fields])
        audit.connection_saved(request.user, obj, form.changed_data, adding=not change)

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        return self._after_switch(request, obj, response)

    def response_change(self, request, obj):
        return self._after_switch(request, obj, super().response_change(request, obj))

    def _after_switch(self, request, obj, response):
        """Say what flipping the switch did; after enabling, stay to watch the progress."""
        switched = getattr(request, "lx_switched", None)
        if switched == "off":
            messages.info(request, "Disabled: nothing more is sent to Xero for this organisation.")
        if switched != "on":
            return response
        messages.info(
            request,
            "Enabled: a full sync of all unarchived membership funders has started. Its progress "
            "shows below.",
        )
        other_choice = {"_continue", "_addanother", "_saveasnew", IS_POPUP_VAR} & set(request.POST)
        if other_choice:
            return response
        return redirect(f"{self.admin_site.name}:lookout_xero_xeroconnection_change", obj.pk)

    # The list's columns, all from the annotations above.

    @admin.display(description="Status")
    def status_badge(self, obj):
        state = status.health(obj, syncing=obj.lx_running or bool(obj.lx_pending))
        if state.key != "error":
            return badge(state.key, state.label)
        return format_html(
            '{} <span class="lx-reason" title="{}">{}</span>',
            badge(state.key, state.label),
            state.reason,
            Truncator(state.reason).chars(70),
        )

    @admin.display(description="Xero organisation", ordering="xero_tenant_name")
    def xero_organisation(self, obj):
        return obj.xero_tenant_name or "—"

    @admin.display(description="Last successful sync", ordering="last_synced_at")
    def last_sync(self, obj):
        return wording.when(obj.last_synced_at, "never")

    @admin.display(description="Pending changes", ordering="lx_pending")
    def pending(self, obj):
        return obj.lx_pending

    @admin.display(description="Conflicts", ordering="lx_conflicts")
    def conflicts(self, obj):
        if not obj.lx_conflicts:
            return 0
        url = reverse(f"{self.admin_site.name}:lookout_xero_xerocontactlink_conflicts")
        return format_html('<a href="{}?connection={}">{}</a>', url, obj.pk, obj.lx_conflicts)

    @admin.display(description="Failed", ordering="lx_failed")
    def failed(self, obj):
        if not obj.lx_failed:
            return 0
        url = reverse(f"{self.admin_site.name}:lookout_xero_xerocontactlink_changelist")
        return format_html(
            '<a href="{}?state__exact=failed&amp;{}={}">{}</a>',
            url,
            organisation_filter(),
            obj.organisation_id,
            obj.lx_failed,
        )

    @admin.display(description="Calls left")
    def calls_left(self, obj):
        return status.calls_left(obj)

    @admin.display(description="Scopes")
    def scopes_flag(self, obj):
        if not obj.granted_scopes:
            return "—"
        if not obj.extra_scopes:
            return "accounting.contacts only"
        return format_html(
            '{} <span class="lx-reason">{}</span>',
            badge("paused", "More than accounting.contacts"),
            ", ".join(obj.extra_scopes),
        )

    @admin.action(description="Create credentials link", permissions=["manage_credentials"])
    def create_credentials_link(self, request, queryset):
        for connection in queryset.select_related("organisation"):
            link_admin.make_link(request, connection.organisation)

    def has_manage_credentials_permission(self, request) -> bool:
        return views.can_manage_credentials(request.user)

    @admin.action(description="Sync now (full)", permissions=["change"])
    def sync_now(self, request, queryset):
        for connection in queryset:
            views.queue_full_sync(request, connection)

    @admin.action(description="Retry failed", permissions=["change"])
    def retry_failed(self, request, queryset):
        for connection in queryset:
            views.queue_retry_failed(request, connection)


# --- runs and the log -----------------------------------------------------------------------


class RunKindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("full", "Full syncs"), ("preview", "Previews")]

    def queryset(self, request, queryset):
        if self.value() in ("full", "preview"):
            return queryset.filter(dry_run=self.value() == "preview")
        return queryset


@admin.register(SyncRun)
class SyncRunAdmin(OrganisationColumn, ReadOnlyAdmin):
    created_when = when_column("created_at", "Created at")
    started_when = when_column("started_at", "Started at")
    finished_when = when_column("finished_at", "Finished at")
    list_display = [
        "run",
        "organisation",
        "status_badge",
        "progress",
        "created",
        "linked",
        "updated",
        "unchanged",
        "conflicts",
        "failed",
        "created_when",
        "log_rows",
    ]
    list_filter = [RunKindFilter, "status", "trigger", BY_ORGANISATION]
    list_select_related = ["connection__organisation"]
    date_hierarchy = "created_at"
    fields = [
        "run",
        "organisation",
        "trigger",
        "status_badge",
        "message",
        "progress",
        ("created", "linked", "updated", "unchanged", "conflicts", "failed"),
        ("created_when", "started_when", "finished_when"),
        "log_rows",
        "preview_report",
    ]
    readonly_fields = [
        "run",
        "organisation",
        "trigger",
        "status_badge",
        "message",
        "progress",
        "created",
        "linked",
        "updated",
        "unchanged",
        "conflicts",
        "failed",
        "created_when",
        "started_when",
        "finished_when",
        "log_rows",
        "preview_report",
    ]

    class Media:
        css = ADMIN_CSS

    @admin.display(description="Run", ordering="pk")
    def run(self, obj):
        return run_label(obj)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return badge(RUN_BADGES.get(obj.status, "disabled"), obj.get_status_display())

    @admin.display(description="Done / in scope")
    def progress(self, obj):
        if obj.dry_run:
            return f"{obj.in_scope} in scope (a preview sends nothing)"
        done = status.progress(obj)
        return f"{done['done']} / {done['in_scope']} ({done['percent']}%)"

    @admin.display(description="Log")
    def log_rows(self, obj):
        url = reverse(f"{self.admin_site.name}:lookout_xero_synclog_changelist")
        return format_html('<a href="{}?run={}">Log rows</a>', url, obj.pk)

    @admin.display(description="Preview report")
    def preview_report(self, obj):
        if not obj.dry_run:
            return "— (a full sync; see its log rows)"
        if obj.status != SyncRun.Status.COMPLETED:
            return "— (not finished)"
        context = status.preview_report(obj)
        return render_to_string("lookout_xero/admin/preview_report.html", context)


class RunFilter(admin.SimpleListFilter):
    """The most recent runs (and the one asked for), not every run there ever was."""

    title = "run"
    parameter_name = "run"
    recent = 10

    def lookups(self, request, model_admin):
        # The runs the run admin shows this person (a host may limit it to some organisations).
        all_runs = (
            views.visible(request, model_admin.admin_site, SyncRun)
            .select_related("connection__organisation")
            .defer(*CONNECTION_CREDENTIALS)
        )
        runs = list(all_runs[: self.recent])
        chosen = self.value()
        if chosen and chosen.isdigit() and all(str(run.pk) != chosen for run in runs):
            runs += list(all_runs.filter(pk=chosen))
        return [(str(run.pk), f"{run_label(run)} · {run.connection.organisation}") for run in runs]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(run_id=value)
        return queryset


@admin.register(SyncLog)
class SyncLogAdmin(OrganisationColumn, ReadOnlyAdmin):
    created_when = when_column("created_at", "Created at")
    list_display = [
        "created_when",
        "organisation",
        "outcome_badge",
        "funder_link",
        "xero_contact",
        "run_link",
        "http_status",
        "short_message",
    ]
    list_filter = [BY_ORGANISATION, "outcome", RunFilter]
    list_select_related = ["connection__organisation"]
    search_fields = ["funder_name", "funder_email", "xero_contact_id"]
    search_help_text = "Funder name, e-mail, ContactNumber (LKT-12) or Xero ContactID"
    date_hierarchy = "created_at"
    list_per_page = 100
    # Counting a large log twice per page is wasted work.
    show_full_result_count = False
    fields = [
        "created_when",
        "organisation",
        "outcome_badge",
        "funder_link",
        "funder_email",
        "xero_contact",
        "run_link",
        "http_status",
        "message",
        "warnings",
    ]
    readonly_fields = fields

    class Media:
        css = ADMIN_CSS

    def get_search_results(self, request, queryset, search_term):
        found, duplicates = super().get_search_results(request, queryset, search_term)
        return with_funders(self, request, queryset, found, search_term), duplicates

    @admin.display(description="Outcome", ordering="outcome")
    def outcome_badge(self, obj):
        return badge(OUTCOME_BADGES.get(obj.outcome, "disabled"), obj.get_outcome_display())

    @admin.display(description="Funder", ordering="funder_name")
    def funder_link(self, obj):
        url = views.funder_admin_url(obj.funder_id, self.admin_site.name) if obj.funder_id else ""
        name = cut(obj.funder_name or (f"funder {obj.funder_id}" if obj.funder_id else "—"))
        if url:
            name = format_html('<a href="{}">{}</a>', url, name)
        if not obj.funder_email:
            return name
        return format_html('{}<br><span class="lx-reason">{}</span>', name, cut(obj.funder_email))

    @admin.display(description="Xero ContactID", ordering="xero_contact_id")
    def xero_contact(self, obj):
        return xero_contact_link(obj.xero_contact_id, short=True)

    @admin.display(description="Run", ordering="run")
    def run_link(self, obj):
        if not obj.run_id:
            return "—"
        url = reverse(f"{self.admin_site.name}:lookout_xero_syncrun_change", args=[obj.run_id])
        return format_html('<a href="{}">#{}</a>', url, obj.run_id)

    @admin.display(description="Message")
    def short_message(self, obj):
        text = obj.message
        if obj.warnings:
            text = f"{text} Warnings: {'; '.join(obj.warnings)}".strip()
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(140))


# --- alert episodes ----------------------------------------------------------------------------


class AlertStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open"), ("no", "Over")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "yes")
        return queryset


@admin.register(XeroAlert)
class XeroAlertAdmin(OrganisationColumn, ReadOnlyAdmin):
    """Each episode of a connection needing a person, and when the team was e-mailed of it."""

    opened_when = when_column("opened_at", "Opened at")
    notified_when = when_column("notified_at", "Notified at")
    resolved_when = when_column("resolved_at", "Resolved at")
    resolved_notified_when = when_column("resolved_notified_at", "Resolved notified at")

    class Media:
        css = ADMIN_CSS  # the lists' shared layout: names cut, headers and dates wrap

    list_display = [
        "organisation",
        "kind",
        "state",
        "opened_when",
        "notified_when",
        "resolved_when",
        "resolved_notified_when",
    ]
    list_filter = [AlertStateFilter, "kind", BY_ORGANISATION]
    list_select_related = ["connection__organisation"]
    date_hierarchy = "opened_at"
    fields = readonly_fields = [
        "organisation",
        "kind",
        "state",
        "detail",
        "opened_when",
        "notified_when",
        "resolved_when",
        "resolved_notified_when",
    ]

    @admin.display(description="State", ordering="resolved_at")
    def state(self, obj):
        return badge("healthy", "Over") if obj.resolved_at else badge("error", "Open")


# --- funder ↔ contact links and the conflicts queue -------------------------------------------


class LinkColumns(OrganisationColumn):
    """Columns shared by the links list and the funder panel; both select the organisation."""

    last_synced_when = when_column("last_synced_at", "Last synced at")

    @admin.display(description="State", ordering="state")
    def state_badge(self, obj):
        return badge(LINK_BADGES.get(obj.state, "disabled"), obj.get_state_display())

    @admin.display(description="Xero ContactID", ordering="xero_contact_id")
    def xero_contact(self, obj):
        return xero_contact_link(obj.xero_contact_id)

    @admin.display(description="Why")
    def reason(self, obj):
        """A hold is the bookkeeper's decision, not an error: it is called what it is."""
        if not obj.last_error:
            return ""
        return f"Held: {obj.last_error}" if obj.is_held else obj.last_error

    @admin.display(description="Why")
    def short_reason(self, obj):
        text = self.reason(obj)
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(140))

    @admin.display(description="Changed in Xero", ordering="drift_seen_at")
    def drift_summary(self, obj):
        """Each field the bookkeeper changed: Xero's value beside what Lookout sent, and
        whether a person is awaited (the funder's page has the buttons)."""
        if not obj.drift:
            return ""
        return format_html(
            '<ul class="lx-drift">{}</ul>',
            format_html_join(
                "",
                "<li><code>{}</code>: Xero “{}”, Lookout “{}”{}</li>",
                (
                    (
                        path,
                        values.get("xero", ""),
                        values.get("lookout", ""),
                        " (waiting for a decision)" if values.get("waiting") else "",
                    )
                    for path, values in obj.drift.items()
                ),
            ),
        )


class DriftFilter(admin.SimpleListFilter):
    """Links whose contact was edited in Xero since Lookout's last push."""

    title = "changed in Xero"
    parameter_name = "drift"

    def lookups(self, request, model_admin):
        return [
            ("yes", "Differs from Lookout"),
            ("waiting", "Waiting for a decision"),
            ("no", "Same as Lookout"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(drift_seen_at__isnull=False)
        if self.value() == "waiting":
            return queryset.filter(decision_since__isnull=False)
        if self.value() == "no":
            return queryset.filter(drift_seen_at__isnull=True)
        return queryset


@admin.register(XeroContactLink)
class XeroContactLinkAdmin(LinkColumns, ReadOnlyAdmin):
    change_list_template = "lookout_xero/admin/link_change_list.html"
    list_display = [
        "funder_name",
        "organisation",
        "state_badge",
        "xero_contact",
        "matched_by",
        "last_synced_when",
        "drift_summary",
        "short_reason",
    ]
    list_filter = ["state", DriftFilter, "matched_by", BY_ORGANISATION]
    actions = ["push_profile_now", "take_xero_values", "restore_in_xero", "stop_syncing"]
    list_select_related = ["funder", "connection__organisation"]
    search_fields = ["xero_contact_id"]
    search_help_text = "Funder name, e-mail, ContactNumber (LKT-12) or Xero ContactID"

    class Media:
        css = ADMIN_CSS

    def get_search_results(self, request, queryset, search_term):
        found, duplicates = super().get_search_results(request, queryset, search_term)
        return with_funders(self, request, queryset, found, search_term), duplicates

    def get_urls(self):
        return [
            *_admin_urls(
                self,
                {
                    "conflicts/": (views.conflicts, "conflicts"),
                    "conflicts/<int:link_id>/resolve/": (views.resolve_conflict, "resolve"),
                    "push/<path:funder_id>/": (views.push_funder, "push"),
                    "<int:link_id>/stop/": (views.stop_syncing_link, "stop"),
                    "<int:link_id>/restore/": (views.restore_in_xero_link, "restore"),
                    "<int:link_id>/take/<str:field>/": (views.take_xero_value, "take"),
                    "<int:link_id>/keep/<str:field>/": (views.keep_lookout_value, "keep"),
                },
            ),
            *super().get_urls(),
        ]

    def has_operate_permission(self, request) -> bool:
        return views.can_operate(request.user)

    @admin.display(description="Funder", ordering="funder")
    def funder_name(self, obj):
        return cut(obj.funder)

    @admin.display(description="Xero ContactID", ordering="xero_contact_id")
    def xero_contact(self, obj):  # short in the list; whole on the funder's panel
        return xero_contact_link(obj.xero_contact_id, short=True)

    @admin.action(description="Push Lookout's profile now", permissions=["operate"])
    def push_profile_now(self, request, queryset):
        links = list(queryset.select_related("connection"))
        queued = services.push_profile_now(links, user=request.user)
        messages.success(request, f"Queued {queued} funder(s): Lookout's profile goes to Xero now.")
        if queued < len(links):
            messages.warning(
                request,
                f"{len(links) - queued} not queued: not synced by choice, held by the "
                "bookkeeper's decision in Xero (archived, merged, GDPR), or disabled.",
            )

    @admin.action(description="Take Xero's values", permissions=["operate"])
    def take_xero_values(self, request, queryset):
        """Every value shown as changed in Xero, written into the selected funders."""
        links = list(
            queryset.filter(drift_seen_at__isnull=False).select_related("connection", "funder")
        )
        taken, refused = 0, 0
        for link in links:
            fields, refusals = services.take_xero_values(link, user=request.user)
            taken += bool(fields)
            refused += len(refusals)
            for field, reason in refusals.items():
                messages.error(request, f"{link.funder}: did not take Xero's {field}: {reason}")
        messages.success(request, f"Took Xero's values for {taken} funder(s).")
        if not links:
            messages.info(request, "None of the selected funders differs from Xero.")

    @admin.action(description="Restore in Xero", permissions=["operate"])
    def restore_in_xero(self, request, queryset):
        links = queryset.select_related("connection", "funder")
        restored = [link for link in links if services.restore_in_xero(link)]
        for link in restored:
            audit.record(request.user, link.connection, f"Restore in Xero: {link.funder}")
        messages.success(request, f"{len(restored)} contact(s) will be restored in Xero.")
        if len(restored) < len(links):
            messages.warning(request, "Only links archived in Xero can be restored there.")

    @admin.action(description="Stop syncing", permissions=["operate"])
    def stop_syncing(self, request, queryset):
        links = list(queryset.select_related("connection", "funder"))
        for link in links:
            services.stop_syncing_funder(link)
            audit.record(request.user, link.connection, f"Stopped syncing: {link.funder}")
        messages.success(request, f"{len(links)} funder(s) will no longer be synced to Xero.")


# --- for the host's funder admin ------------------------------------------------------------


class XeroLinkInline(LinkColumns, admin.TabularInline):
    """Read-only Xero panel for any host's funder admin: `inlines = [XeroLinkInline]`."""

    model = XeroContactLink
    fk_name = "funder"
    template = "lookout_xero/admin/link_inline.html"
    verbose_name = "Xero contact"
    verbose_name_plural = "Xero sync"
    fields = [
        "organisation",
        "state_badge",
        "xero_contact",
        "matched_by",
        "last_synced_when",
        "drift_summary",
        "reason",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    class Media:
        css = ADMIN_CSS
        js = ADMIN_JS

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.action(description="Push to Xero now")
def push_to_xero(modeladmin, request, queryset):
    views.push_funders(request, queryset, admin_site=modeladmin.admin_site)


class XeroFunderAdminMixin:
    """Adds the "Push to Xero now" action to a host's funder ModelAdmin."""

    def get_actions(self, request, action_location=None):
        actions = parent_actions(super().get_actions, request, action_location)
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions
        if getattr(action_location, "value", "CHANGE_LIST") != "CHANGE_LIST":
            return actions  # Django 6.1's actions on a change form: the list's action only
        if views.can_operate(request.user):
            actions["push_to_xero"] = self.get_action(push_to_xero)
        return actions
