"""The sync: the only place where the ORM meets the Xero client.

Flow: a funder save queues an outbox row (`outbox.queue_funder`); `drain.drain` takes the
organisation's lease and pushes pending funders in batches; enabling a connection plans a full
sync (`full_sync.run_full_sync`) that links funders to contacts already in Xero and queues
everything in scope. `switch` owns the Enabled switch, `people` the decisions a person makes,
`policy` how every caller reacts to Xero's errors, `common` what they share. Work is enqueued
through `lookout_xero.dispatch`, by task name: nothing here imports `tasks`.
"""

from .common import (
    RetryLater,
    StopDrain,
    client_for,
    finish_run,
    in_scope_funders,
    is_archived,
    is_membership,
    organisation_id_of,
    record_connection_error,
)
from .drain import FollowUp, drain, drain_once, name_with_suffix, next_due_in
from .full_sync import run_full_sync
from .lease import Lease, LeaseLost
from .outbox import (
    ask_for_drain_on_commit,
    prune_logs,
    push_now,
    queue_funder,
    retry_failed,
    sweep,
)
from .people import CredentialCheck, check_credentials, next_name_suffix, resolve_conflict
from .policy import Decision, Reaction, backoff, react_to
from .switch import (
    apply_change,
    cancel_run,
    start_full_sync,
    start_preview,
    stop_syncing,
)

__all__ = [
    "CredentialCheck",
    "Decision",
    "FollowUp",
    "Lease",
    "LeaseLost",
    "Reaction",
    "RetryLater",
    "StopDrain",
    "apply_change",
    "ask_for_drain_on_commit",
    "backoff",
    "cancel_run",
    "check_credentials",
    "client_for",
    "drain",
    "drain_once",
    "finish_run",
    "in_scope_funders",
    "is_archived",
    "is_membership",
    "name_with_suffix",
    "next_due_in",
    "next_name_suffix",
    "organisation_id_of",
    "prune_logs",
    "push_now",
    "queue_funder",
    "react_to",
    "record_connection_error",
    "resolve_conflict",
    "retry_failed",
    "run_full_sync",
    "start_full_sync",
    "start_preview",
    "stop_syncing",
    "sweep",
]
