"""Mirror a CRM's membership funders into each organisation's Xero as Contacts."""

__version__ = "0.1.0"
