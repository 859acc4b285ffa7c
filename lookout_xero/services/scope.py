"""Which funders belong in Xero: the host's settings say which field is what."""

from __future__ import annotations

from .. import conf
from ..models import XeroConnection


def is_membership(funder) -> bool:
    return getattr(funder, conf.get("MEMBERSHIP_FIELD")) == conf.get("MEMBERSHIP_VALUE")


def is_archived(funder) -> bool:
    return bool(getattr(funder, conf.get("ARCHIVED_FIELD")))


def organisation_id_of(funder):
    return getattr(funder, conf.get("ORGANISATION_FIELD") + "_id")


def funders_of(connection: XeroConnection):
    return conf.funder_model().objects.filter(
        **{conf.get("ORGANISATION_FIELD") + "_id": connection.organisation_id}
    )


def in_scope_funders(connection: XeroConnection):
    """Unarchived membership funders of the connection's organisation, and no one else's."""
    return funders_of(connection).filter(
        **{
            conf.get("MEMBERSHIP_FIELD"): conf.get("MEMBERSHIP_VALUE"),
            conf.get("ARCHIVED_FIELD"): False,
        }
    )
