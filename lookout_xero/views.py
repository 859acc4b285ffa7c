"""Admin views behind the connection page's buttons, the funder panel and the conflicts queue.

`admin.py` routes them through `ModelAdmin.get_urls()` and `AdminSite.admin_view` (staff login,
CSRF protection); each view checks its own permission. Actions only enqueue: the one view that
talks to Xero synchronously is Test connection, which the person is waiting for.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from . import audit, conf, credentials, mapping, services, status
from .models import SyncRun, XeroConnection, XeroContactLink

CREDENTIALS_PERMISSION = "lookout_xero.manage_xero_credentials"
# Starting syncs, retrying, cancelling, pushing and resolving conflicts.
OPERATE_PERMISSION = "lookout_xero.change_xeroconnection"
CONFLICTS_PER_PAGE = 25
XERO_CONTACT_URL = "https://go.xero.com/Contacts/View/{}"
# Shorter strings than any real Client Secret would be "redacted" inside ordinary words.
MIN_REDACTED_LENGTH = 8


def can_manage_credentials(user) -> bool:
    return user.has_perm(CREDENTIALS_PERMISSION)


def can_operate(user) -> bool:
    return user.has_perm(OPERATE_PERMISSION)


def visible(request, admin_site, model):
    """The rows of `model` this person may see on this admin site: its ModelAdmin's queryset.

    A host that limits staff to some organisations does it in `get_queryset`; pages that act
    on another model's rows go through this, so the limit holds there too.
    """
    if not admin_site.is_registered(model):
        return model._default_manager.all()
    return admin_site.get_model_admin(model).get_queryset(request)


def funders_matching(request, admin_site, term: str):
    """The funders a person means by `term`: a ContactNumber Lookout gives (`LKT-12`), or
    whatever the host's own funder admin finds for it (its `search_fields`: name, e-mail…).

    lookout_xero does not know the host's field names; the host's funder admin does. Returns a
    queryset of funder primary keys, empty when nothing matches (or nothing can be searched).
    """
    model = conf.funder_model()
    term = term.strip()
    wanted = Q(pk__in=[])
    prefix = conf.get("CONTACT_NUMBER_PREFIX")
    if term and prefix and term.casefold().startswith(prefix.casefold()):
        try:
            wanted |= Q(pk=model._meta.pk.to_python(term[len(prefix) :].strip()))
        except ValidationError:
            pass  # not a primary key of this model: no funder has that ContactNumber
    if term and admin_site.is_registered(model):
        funder_admin = admin_site.get_model_admin(model)
        if funder_admin.get_search_fields(request):
            searched, _ = funder_admin.get_search_results(
                request, model._default_manager.all(), term
            )
            wanted |= Q(pk__in=searched.values("pk"))
    return model._default_manager.filter(wanted).values("pk")


def xero_contact_url(contact_id: str) -> str:
    return XERO_CONTACT_URL.format(contact_id)


def funder_admin_url(funder_id, admin_site_name: str = "admin") -> str:
    """The host's admin change page of a funder, or "" when the host does not register one."""
    opts = conf.funder_model()._meta
    try:
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=[funder_id],
            current_app=admin_site_name,
        )
    except NoReverseMatch:
        return ""


# --- the connection page --------------------------------------------------------------------


@sensitive_post_parameters("client_secret", "webhook_key")
@sensitive_variables()
@require_POST
def test_connection(request, model_admin):
    """Check the typed credentials (saved or not) against Xero; enables nothing."""
    if not can_manage_credentials(request.user):
        raise PermissionDenied
    client_id = request.POST.get("client_id", "").strip()
    secret = request.POST.get("client_secret", "").strip()
    scope = request.POST.get("scope", "")
    object_id = request.POST.get("connection", "")
    connection = model_admin.get_object(request, unquote(object_id)) if object_id else None
    if not secret and connection:
        secret = connection.client_secret
    if not client_id or not secret:
        return JsonResponse(
            {"ok": False, "message": "Type the Client ID and the Client Secret first."}
        )
    check = credentials.check(client_id, secret, scope)
    if connection and client_id == connection.client_id:
        credentials.remember_scopes(connection, check)
    message = check.message
    if len(secret) >= MIN_REDACTED_LENGTH:
        # Xero's answer is quoted in some messages; make sure it never carries the secret back.
        message = message.replace(secret, "[secret]")
    return JsonResponse(
        {
            "ok": check.ok,
            "message": message,
            "tenant_name": check.tenant_name,
            "scopes": list(check.scopes),
        }
    )


@require_GET
def connection_status(request, model_admin, object_id):
    """The status panel's data, polled by the page while a sync runs. Never a credential."""
    connection = _connection_or_404(request, model_admin, object_id)
    if not model_admin.has_view_permission(request, connection):
        raise PermissionDenied
    return JsonResponse(status.summary(connection))


@require_POST
def start_preview(request, model_admin, object_id):
    """Queue a dry run of a full sync; the page polls `preview_status` for its report."""
    connection = _connection_or_404(request, model_admin, object_id)
    if not can_operate(request.user):
        raise PermissionDenied
    with transaction.atomic():
        run = services.start_preview(connection)
    url = reverse(
        f"{model_admin.admin_site.name}:lookout_xero_xeroconnection_preview_status",
        args=[connection.pk, run.pk],
    )
    return JsonResponse({"run": status.progress(run), "url": url})


@require_GET
def preview_status(request, model_admin, object_id, run_id):
    """A preview's progress, and its report as HTML once the worker has finished it."""
    connection = _connection_or_404(request, model_admin, object_id)
    if not model_admin.has_view_permission(request, connection):
        raise PermissionDenied
    run = get_object_or_404(SyncRun, pk=run_id, connection=connection, dry_run=True)
    data = status.progress(run)
    if run.status == SyncRun.Status.COMPLETED:
        data["html"] = render_to_string(
            "lookout_xero/admin/preview_report.html", status.preview_report(run), request=request
        )
    return JsonResponse(data)


@require_POST
def sync_now(request, model_admin, object_id):
    connection = _connection_or_404(request, model_admin, object_id)
    if not can_operate(request.user):
        raise PermissionDenied
    queue_full_sync(request, connection)
    return _back_to_connection(model_admin, connection)


@require_POST
def retry_failed(request, model_admin, object_id):
    connection = _connection_or_404(request, model_admin, object_id)
    if not can_operate(request.user):
        raise PermissionDenied
    queue_retry_failed(request, connection)
    return _back_to_connection(model_admin, connection)


@require_POST
def cancel_run(request, model_admin, object_id):
    """Cancel the running full sync of this connection."""
    connection = _connection_or_404(request, model_admin, object_id)
    if not can_operate(request.user):
        raise PermissionDenied
    run = connection.runs.full_syncs().active().first()
    if run is None or not services.cancel_run(run, by=request.user.get_username()):
        messages.info(request, "No full sync is running.")
        return _back_to_connection(model_admin, connection)
    messages.success(request, f"Cancelled full sync #{run.pk} after {run.done} funders.")
    return _back_to_connection(model_admin, connection)


@require_POST
def set_directions(request, model_admin, object_id):
    """The connection page's *Who wins* panel: each field's direction (Lookout, Ask, Xero)."""
    connection = _connection_or_404(request, model_admin, object_id)
    if not can_operate(request.user):
        raise PermissionDenied
    changes = {
        field: request.POST[f"direction-{field}"]
        for field in mapping.DIRECTION_FIELDS
        if f"direction-{field}" in request.POST
    }
    before = services.directions_of(connection)
    try:
        after = services.set_directions(connection, changes, user=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
        return _back_to_connection(model_admin, connection)
    changed = [f"{field}: {after[field]}" for field in after if after[field] != before[field]]
    if changed:
        messages.success(request, "Who wins on a difference with Xero: " + ", ".join(changed) + ".")
    else:
        messages.info(request, "Nothing changed.")
    return _back_to_connection(model_admin, connection)


def queue_full_sync(request, connection: XeroConnection) -> bool:
    """Start a full sync if the connection can run one, and tell the person what happened."""
    if not connection.enabled:
        messages.warning(
            request,
            f"{connection.organisation}: disabled, so nothing is sent to Xero. Tick "
            "Enabled and save to run a full sync.",
        )
        return False
    if connection.state == XeroConnection.State.ERROR:
        messages.error(
            request,
            f"{connection.organisation}: Xero refused the credentials. Fix them (Test "
            "connection) and save; that resumes the sync.",
        )
        return False
    with transaction.atomic():
        run = services.start_full_sync(connection, trigger=SyncRun.Trigger.MANUAL)
        audit.record(request.user, connection, f"Ran Sync now (full sync #{run.pk}).")
    note = " It starts when Xero's daily limit resets." if connection.is_paused else ""
    messages.success(request, f"{connection.organisation}: full sync #{run.pk} queued.{note}")
    return True


def queue_retry_failed(request, connection: XeroConnection) -> int:
    if not connection.enabled:
        messages.warning(
            request,
            f"{connection.organisation}: disabled, so nothing is retried. The next "
            "enable runs a full sync, which retries every funder.",
        )
        return 0
    with transaction.atomic():
        queued = services.retry_failed(connection)
    if queued:
        messages.success(
            request, f"{connection.organisation}: {queued} failed funder(s) queued to try again."
        )
    else:
        messages.info(request, f"{connection.organisation}: no failed funders to retry.")
    return queued


def _connection_or_404(request, model_admin, object_id) -> XeroConnection:
    connection = model_admin.get_object(request, unquote(str(object_id)))
    if connection is None:
        raise Http404("No such Xero connection.")
    return connection


def _back_to_connection(model_admin, connection: XeroConnection) -> HttpResponseRedirect:
    return redirect(
        f"{model_admin.admin_site.name}:lookout_xero_xeroconnection_change", connection.pk
    )


# --- funders --------------------------------------------------------------------------------


@require_POST
def push_funder(request, model_admin, funder_id):
    """The funder panel's Push now button: queue this funder and return to its page."""
    if not can_operate(request.user):
        raise PermissionDenied
    site = model_admin.admin_site
    funders = visible(request, site, conf.funder_model()).filter(pk=unquote(str(funder_id)))
    if not funders.exists():
        raise Http404("No such funder.")
    push_funders(request, funders, admin_site=site)
    url = funder_admin_url(funders[0].pk, model_admin.admin_site.name)
    return redirect(url or f"{model_admin.admin_site.name}:index")


@require_POST
def stop_syncing_link(request, model_admin, link_id):
    """The funder panel's Stop syncing, beside a link held by the bookkeeper's decision."""
    if not can_operate(request.user):
        raise PermissionDenied
    link = get_object_or_404(
        model_admin.get_queryset(request).select_related("connection", "funder"), pk=link_id
    )
    services.stop_syncing_funder(link)
    audit.record(request.user, link.connection, f"Stopped syncing: {link.funder}")
    messages.success(request, f"{link.funder} will no longer be synced to Xero.")
    url = funder_admin_url(link.funder_id, model_admin.admin_site.name)
    return redirect(url or f"{model_admin.admin_site.name}:index")


@require_POST
def restore_in_xero_link(request, model_admin, link_id):
    """The funder panel's Restore in Xero, beside a link archived in Xero by someone else."""
    if not can_operate(request.user):
        raise PermissionDenied
    link = get_object_or_404(
        model_admin.get_queryset(request).select_related("connection", "funder"), pk=link_id
    )
    if services.restore_in_xero(link):
        audit.record(request.user, link.connection, f"Restore in Xero: {link.funder}")
        messages.success(request, f"{link.funder}'s contact will be restored in Xero.")
    else:
        messages.warning(request, "Only a contact archived in Xero can be restored there.")
    url = funder_admin_url(link.funder_id, model_admin.admin_site.name)
    return redirect(url or f"{model_admin.admin_site.name}:index")


@require_POST
def take_xero_value(request, model_admin, link_id, field):
    """The funder panel's *Take Xero's value* for one Contact field of one link."""
    link = _link_to_decide(request, model_admin, link_id)
    taken, refused = services.take_xero_values(link, [field], user=request.user)
    if taken:
        messages.success(request, f"{link.funder}: took Xero's {field}.")
    for name, reason in refused.items():
        messages.error(request, f"{link.funder}: did not take Xero's {name}: {reason}")
    if not taken and not refused:
        messages.info(request, f"{link.funder}: {field} no longer differs from Xero.")
    return _back_to_funder(model_admin, link)


@require_POST
def keep_lookout_value(request, model_admin, link_id, field):
    """The funder panel's *Keep Lookout's* for one Contact field of one link: pushed now."""
    link = _link_to_decide(request, model_admin, link_id)
    if services.keep_lookout_values(link, [field], user=request.user):
        messages.success(request, f"{link.funder}: Lookout's {field} goes to Xero now.")
    else:
        messages.info(request, f"{link.funder}: {field} no longer differs from Xero.")
    return _back_to_funder(model_admin, link)


def differences(link: XeroContactLink) -> list[dict]:
    """Per Contact field changed in Xero: Lookout's value now and Xero's, path by path, and
    whether a person is awaited (the field's direction is Ask, or Xero's value was refused)."""
    if not link.drift:
        return []
    try:
        current = mapping.flatten(_as_contact(link.funder).payload)
    except Exception:  # the host's mapping: the stored values still tell the story
        current = {}
    fields: dict[str, dict] = {}
    for path, values in sorted(link.drift.items()):
        field = mapping.field_of(path)
        row = fields.setdefault(field, {"field": field, "rows": [], "waiting": False})
        ours = current.get(path, values.get("lookout", ""))
        label = path[len(field) + 1 :].replace(".", " ") if path != field else ""
        row["rows"].append(
            {"label": label, "lookout": mapping.flat_text(ours), "xero": values.get("xero", "")}
        )
        row["waiting"] = row["waiting"] or bool(values.get("waiting"))
    return list(fields.values())


def _link_to_decide(request, model_admin, link_id) -> XeroContactLink:
    if not can_operate(request.user):
        raise PermissionDenied
    return get_object_or_404(
        model_admin.get_queryset(request).select_related("connection", "funder"), pk=link_id
    )


def _back_to_funder(model_admin, link: XeroContactLink):
    url = funder_admin_url(link.funder_id, model_admin.admin_site.name)
    return redirect(url or f"{model_admin.admin_site.name}:index")


def push_funders(request, funders, *, admin_site=None) -> int:
    """Queue funders for their organisations' enabled connections, and say what happened.

    With `admin_site`, only connections its connection admin shows this person are used.
    """
    by_organisation: dict = defaultdict(list)
    organisation_field = conf.get("ORGANISATION_FIELD") + "_id"
    for pk, organisation_id in funders.values_list("pk", organisation_field):
        by_organisation[organisation_id].append(pk)
    connections = XeroConnection.objects.all()
    if admin_site is not None:
        connections = connections.filter(
            pk__in=visible(request, admin_site, XeroConnection).values("pk")
        )
    connections = connections.filter(organisation_id__in=list(by_organisation))
    queued = 0
    # A funder held by the bookkeeper's decision (archived in Xero, GDPR) is not written to:
    # saying "Queued" for it would promise a push that does not happen.
    held = set(
        XeroContactLink.objects.filter(
            connection__in=connections,
            funder_id__in=[pk for ids in by_organisation.values() for pk in ids],
            state__in=XeroContactLink.HELD_STATES,
        ).values_list("connection_id", "funder_id")
    )
    with transaction.atomic():
        for connection in connections:
            ids = [
                pk
                for pk in by_organisation[connection.organisation_id]
                if (connection.pk, pk) not in held
            ]
            queued += services.push_now(connection, ids) if ids else 0
    skipped = sum(len(ids) for ids in by_organisation.values()) - queued - len(held)
    if held:
        messages.warning(
            request,
            f"{len(held)} funder(s) not pushed: held by the bookkeeper's decision in Xero "
            "(archived there, or a GDPR request). Restore in Xero, or Stop syncing, decides.",
        )
    if queued:
        messages.success(request, f"Queued {queued} funder(s) for pushing to Xero now.")
    if skipped:
        messages.warning(
            request,
            f"{skipped} funder(s) not queued: their organisation has no enabled Xero connection.",
        )
    return queued


# --- the conflicts queue --------------------------------------------------------------------


@require_GET
def conflicts(request, model_admin):
    """Links in conflict, each funder beside the Xero contacts it could be, with the choices."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    links = (
        model_admin.get_queryset(request)
        .filter(state=XeroContactLink.State.CONFLICT)
        .select_related("funder", "connection__organisation")
        .order_by("connection__organisation_id", "pk")
    )
    connection_id = request.GET.get("connection", "")
    if connection_id.isdigit():
        links = links.filter(connection_id=connection_id)
    query = request.GET.get("q", "").strip()
    if query:
        links = links.filter(funder__in=funders_matching(request, model_admin.admin_site, query))
    page = Paginator(links, CONFLICTS_PER_PAGE).get_page(request.GET.get("p"))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Conflicts to resolve",
        "opts": model_admin.model._meta,
        "page": page,
        "conflicts": [_conflict_row(link, model_admin) for link in page],
        "can_resolve": can_operate(request.user),
        "next": request.get_full_path(),
        "connection_id": connection_id if connection_id.isdigit() else "",
        "query": query,
    }
    return TemplateResponse(request, "lookout_xero/admin/conflicts.html", context)


def _conflict_row(link: XeroContactLink, model_admin) -> dict:
    funder = link.funder
    contact = _as_contact(funder)
    return {
        "link": link,
        "funder": funder,
        "funder_url": funder_admin_url(funder.pk, model_admin.admin_site.name),
        "name": contact.name,
        "email": contact.email,
        "contact_number": contact.payload.get("ContactNumber", ""),
        "distinct_name": _distinct_name(link, contact.name),
        "candidates": [
            {**candidate, "url": xero_contact_url(candidate.get("contact_id", ""))}
            for candidate in link.conflict_candidates
        ],
    }


def _as_contact(funder) -> mapping.CleanContact:
    """The funder as Xero would see it: the host's mapping, cleaned to Xero's limits."""
    return mapping.clean_contact(
        conf.mapping_function()(funder),
        number=mapping.contact_number(conf.get("CONTACT_NUMBER_PREFIX"), funder.pk),
    )


def _distinct_name(link: XeroContactLink, name: str) -> str:
    return services.name_with_suffix(name, services.next_name_suffix(link.name_suffix))


@require_POST
def resolve_conflict(request, model_admin, link_id):
    """A person's decision on one conflict; resolving queues the funder to sync at once."""
    if not can_operate(request.user):
        raise PermissionDenied
    link = get_object_or_404(
        model_admin.get_queryset(request).select_related("funder", "connection__organisation"),
        pk=link_id,
    )
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = reverse(f"{model_admin.admin_site.name}:lookout_xero_xerocontactlink_conflicts")
    if link.state != XeroContactLink.State.CONFLICT:
        messages.info(request, f"“{link.funder}” is no longer in conflict.")
        return HttpResponseRedirect(back)
    decision = request.POST.get("decision", "")
    try:
        with transaction.atomic():
            done = _apply_decision(link, decision, request.POST.get("contact_id", ""))
    except ValueError as exc:
        messages.error(request, f"“{link.funder}”: {exc}")
        return HttpResponseRedirect(back)
    audit.record(request.user, link.connection, f"Resolved a conflict: {done}")
    if not link.connection.enabled:
        done += " The connection is disabled, so it syncs when it is enabled."
    messages.success(request, done)
    return HttpResponseRedirect(back)


def _apply_decision(link: XeroContactLink, decision: str, contact_id: str) -> str:
    if decision == "link":
        candidate = next(
            (c for c in link.conflict_candidates if c.get("contact_id") == contact_id), None
        )
        if candidate is None:
            raise ValueError("that Xero contact is not one of this conflict's candidates.")
        services.resolve_conflict(link, contact_id=contact_id)
        return f"“{link.funder}” linked to the Xero contact “{candidate.get('name')}”; syncing it."
    if decision == "create":
        services.resolve_conflict(link, create_new=True)
        name = services.name_with_suffix(_as_contact(link.funder).name, link.name_suffix)
        return f"“{link.funder}” will be created in Xero as a new contact named “{name}”."
    if decision == "ignore":
        services.resolve_conflict(link, ignore=True)
        return f"“{link.funder}” will not be synced. “Push now” on its page brings it back."
    raise ValueError("choose how to resolve the conflict.")
