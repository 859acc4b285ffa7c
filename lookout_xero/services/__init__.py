"""The sync: the only place where the ORM meets the Xero client.

Flow: a funder save queues an outbox row (`outbox.queue_funder`); `drain.drain` takes the
organisation's lease and pushes pending funders in batches; enabling a connection plans a full
sync (`full_sync.run_full_sync`) that links funders to contacts already in Xero and queues
everything in scope. `switch` owns the Enabled switch, `people` the decisions a person makes,
`common` what they share.
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
from .drain import acquire_lease, backoff, drain, name_with_suffix, next_due_in
from .full_sync import run_full_sync
from .outbox import enqueue_drain_on_commit, prune_logs, push_now, queue_funder, retry_failed, sweep
from .people import CredentialCheck, check_credentials, next_name_suffix, resolve_conflict
from .switch import (
    after_connection_save,
    before_connection_save,
    cancel_run,
    start_full_sync,
    start_preview,
    stop_syncing,
)

__all__ = [
    "CredentialCheck",
    "RetryLater",
    "StopDrain",
    "acquire_lease",
    "after_connection_save",
    "backoff",
    "before_connection_save",
    "cancel_run",
    "check_credentials",
    "client_for",
    "drain",
    "enqueue_drain_on_commit",
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
    "record_connection_error",
    "resolve_conflict",
    "retry_failed",
    "run_full_sync",
    "start_full_sync",
    "start_preview",
    "stop_syncing",
    "sweep",
]
