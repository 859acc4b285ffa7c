"""The sync: the only place where the ORM meets the Xero client.

Flow: a funder save queues an outbox row (`outbox.queue_funder_of_organisation`), unless
`enabled` knows its organisation has no enabled connection; `drain.drain` takes the
organisation's lease and pushes pending funders in batches; enabling a connection plans a
full sync (`full_sync.run_full_sync`) that links funders to contacts already in Xero and
queues everything in scope. `switch` owns the Enabled switch, `people` the decisions a person
makes, `policy` how every caller reacts to Xero's errors. They share `scope` (which funders
belong in Xero), `calls` (a connection's client, and what Xero's refusals do to it), `records`
(runs and the sync log) and `links` (what a match does to a link). Beat runs `sweep` (what an
outage left behind), `retention`, and `reconcile`, which finds funders changed without a save
(their Contact differs from what Xero last received) and queues them. `webhooks` stores
Xero's events and reads the contacts they name, and `changes` reads what changed in Xero
for connections without a webhook; `bookkeeper` applies what the bookkeeper did
in Xero (merges, archives, GDPR requests, drift) to the links, for webhooks, write answers and
full syncs alike, and `corrections` what each field's direction makes of a drift (shown, or
taken into the funder). Work is enqueued through `lookout_xero.dispatch`, by task name: nothing here
imports `tasks`.
"""

from .bookkeeper import review_links
from .calls import RetryLater, StopDrain, client_for, record_connection_error
from .changes import connections_to_read, read_changes
from .corrections import (
    directions_of,
    keep_lookout_values,
    set_directions,
    take_xero_values,
)
from .drain import FollowUp, drain, drain_once, name_with_suffix, next_due_in
from .enabled import clear as clear_enabled
from .enabled import forget as forget_enabled
from .enabled import may_have_enabled_connection
from .full_sync import run_full_sync
from .lease import Lease, LeaseLost
from .outbox import (
    ask_for_drain_on_commit,
    queue_changed_funders,
    queue_funder,
    queue_funder_of_organisation,
)
from .people import (
    CredentialCheck,
    check_credentials,
    discard_new_tenant,
    next_name_suffix,
    push_now,
    push_profile_now,
    resolve_conflict,
    restore_in_xero,
    retry_failed,
    stop_syncing_funder,
    use_new_tenant,
    waiting_for_a_person,
)
from .policy import Decision, Reaction, backoff, react_to
from .reconcile import Reconciled, reconcile
from .records import finish_run
from .retention import prune_logs
from .scope import in_scope_funders, is_archived, is_membership, organisation_id_of
from .sweep import sweep
from .switch import (
    apply_change,
    cancel_run,
    start_full_sync,
    start_preview,
    stop_syncing,
)
from .webhooks import process_webhooks
from .webhooks import receive as receive_webhook

__all__ = [
    "CredentialCheck",
    "Decision",
    "FollowUp",
    "Lease",
    "LeaseLost",
    "Reaction",
    "Reconciled",
    "RetryLater",
    "StopDrain",
    "apply_change",
    "ask_for_drain_on_commit",
    "backoff",
    "cancel_run",
    "check_credentials",
    "clear_enabled",
    "client_for",
    "connections_to_read",
    "directions_of",
    "discard_new_tenant",
    "drain",
    "drain_once",
    "finish_run",
    "forget_enabled",
    "in_scope_funders",
    "is_archived",
    "is_membership",
    "keep_lookout_values",
    "may_have_enabled_connection",
    "name_with_suffix",
    "next_due_in",
    "next_name_suffix",
    "organisation_id_of",
    "process_webhooks",
    "prune_logs",
    "push_now",
    "push_profile_now",
    "queue_changed_funders",
    "queue_funder",
    "queue_funder_of_organisation",
    "react_to",
    "read_changes",
    "receive_webhook",
    "reconcile",
    "record_connection_error",
    "resolve_conflict",
    "restore_in_xero",
    "retry_failed",
    "review_links",
    "run_full_sync",
    "set_directions",
    "start_full_sync",
    "start_preview",
    "stop_syncing",
    "stop_syncing_funder",
    "sweep",
    "take_xero_values",
    "use_new_tenant",
    "waiting_for_a_person",
]
