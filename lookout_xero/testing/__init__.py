"""Test helpers for lookout_xero, including an in-process fake of the Xero API."""
