"""A second host CRM, unlike the demo in every name lookout_xero could assume.

Clubs (not organisations) have a `title` (not a name); members (not funders) have a
`display_name`, a `kind` ("member" marks membership), `is_archived` and `email_address`, and a
mapping of their own. Its tests run as a separate pytest invocation with its settings
(`--ds=tests.hosts.crm.settings`); `minimal_settings` is the whole of a host's configuration, for
the check that the built wheel installs into a CRM that is not the demo.

Only relative imports in here: the wheel check imports this package as plain `crm`.
"""
