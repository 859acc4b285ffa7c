"""Encrypted model fields that fail loudly when no key in FERNET_KEYS opens a stored value.

django-fernet-fields-v2 raises a bare `InvalidToken` (no message) from deep inside a query.
These fields raise `UndecryptableError`, which names the field and the setting to fix, so a
worker log, a shell or an admin error page says what is wrong. They never return ciphertext.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.core.exceptions import ImproperlyConfigured
from fernet_fields import EncryptedCharField as _EncryptedCharField
from fernet_fields import EncryptedTextField as _EncryptedTextField


class UndecryptableError(ImproperlyConfigured):
    """A stored value cannot be decrypted with any key in FERNET_KEYS."""

    def __init__(self, label: str) -> None:
        super().__init__(
            f"{label} cannot be decrypted with any key in FERNET_KEYS. The key that encrypted it "
            "was removed or changed: put it back in FERNET_KEYS (after the current one), run "
            "`manage.py xero_rotate_keys`, and only then remove it."
        )
        self.label = label


class _LoudDecryption:
    def from_db_value(self, value, expression, connection, *args):
        try:
            return super().from_db_value(value, expression, connection, *args)
        except InvalidToken:
            raise UndecryptableError(
                f"{self.model._meta.verbose_name.capitalize()}'s {self.verbose_name}"
            ) from None


class EncryptedCharField(_LoudDecryption, _EncryptedCharField):
    pass


class EncryptedTextField(_LoudDecryption, _EncryptedTextField):
    pass
