"""A host-style custom mapping for tests: adds the funder's membership number."""

from lookout_xero.mapping import map_funder


def with_account_number(funder) -> dict:
    return {**map_funder(funder), "AccountNumber": f"M-{funder.pk:05}"}
