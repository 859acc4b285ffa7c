"""FERNET_KEYS rotation and the check that every stored value can still be decrypted.

Works on the stored bytes, not on decrypted model instances: a value is rewritten only if the
first key cannot already open it (so running twice rewrites nothing), and only if some key in
FERNET_KEYS can (so garbage is never re-encrypted). Each write is a compare-and-swap on the old
bytes, so a token a worker stores meanwhile is not overwritten with an older one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.db import connections, router, transaction
from fernet_fields import EncryptedField

BATCH_SIZE = 200


def encrypted_columns() -> list[tuple[type, list]]:
    """Every lookout_xero model with encrypted fields, and those fields."""
    found = []
    for model in apps.get_app_config("lookout_xero").get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
        if fields:
            found.append((model, fields))
    return found


@dataclass
class RotationReport:
    rows_rewritten: int = 0
    values_rewritten: int = 0
    undecryptable: list[str] = field(default_factory=list)  # "model pk field", never a value


def _first_key_opens(field, value: bytes) -> bool:
    try:
        Fernet(field.fernet_keys[0]).decrypt(value)
    except InvalidToken:
        return False
    return True


def _any_key_opens(field, value: bytes) -> bool:
    try:
        field.fernet.decrypt(value)
    except InvalidToken:
        return False
    return True


def _raw_rows(model, fields, after_pk, limit, using):
    """(pk, {field: stored bytes}) in pk order, read past the fields' decryption."""
    table = model._meta.db_table
    conn = connections[using]
    quote = conn.ops.quote_name
    pk = model._meta.pk.column
    columns = ", ".join(quote(f.column) for f in fields)
    sql = (
        f"SELECT {quote(pk)}, {columns} FROM {quote(table)} "  # noqa: S608 - names from _meta
        f"WHERE {quote(pk)} > %s ORDER BY {quote(pk)} LIMIT %s"
    )
    with conn.cursor() as cursor:
        cursor.execute(sql, [after_pk, limit])
        for row in cursor.fetchall():
            stored = zip(fields, row[1:], strict=True)
            values = {f: bytes(v) if v is not None else None for f, v in stored}
            yield row[0], values


def rotate(*, batch_size: int = BATCH_SIZE, dry_run: bool = False) -> RotationReport:
    """Re-encrypt every stored value that the first key in FERNET_KEYS does not open yet."""
    report = RotationReport()
    for model, fields in encrypted_columns():
        using = router.db_for_write(model)
        last_pk = 0
        while True:
            rows = list(_raw_rows(model, fields, last_pk, batch_size, using))
            if not rows:
                break
            with transaction.atomic(using=using):
                for pk, values in rows:
                    report.rows_rewritten += _rotate_row(model, pk, values, using, report, dry_run)
            last_pk = rows[-1][0]
    if not dry_run and not report.undecryptable:
        _clear_key_errors()
    return report


def _clear_key_errors() -> None:
    """Every value opens again (the key is back): lift the error a dropped key had set."""
    from .models import XeroConnection

    XeroConnection.objects.filter(error_code="undecryptable").update(
        state=XeroConnection.State.OK, error_code="", error_message=""
    )


def _rotate_row(model, pk, values, using, report, dry_run) -> int:
    conn = connections[using]
    quote = conn.ops.quote_name
    rewritten = 0
    for f, value in values.items():
        if value is None or _first_key_opens(f, value):
            continue
        if not _any_key_opens(f, value):
            report.undecryptable.append(f"{model._meta.label} {pk} {f.name}")
            continue
        rewritten = 1
        report.values_rewritten += 1
        if dry_run:
            continue
        new = conn.Database.Binary(f.fernet.rotate(value))
        sql = (
            f"UPDATE {quote(model._meta.db_table)} SET {quote(f.column)} = %s "  # noqa: S608
            f"WHERE {quote(model._meta.pk.column)} = %s AND {quote(f.column)} = %s"
        )
        with conn.cursor() as cursor:
            cursor.execute(sql, [new, pk, conn.Database.Binary(value)])
    return rewritten


def undecryptable_sample(limit: int = 20) -> list[str]:
    """Stored values (newest rows first, up to `limit` rows per model) no key can open."""
    problems = []
    for model, fields in encrypted_columns():
        using = router.db_for_read(model)
        conn = connections[using]
        quote = conn.ops.quote_name
        pk = quote(model._meta.pk.column)
        columns = ", ".join(quote(f.column) for f in fields)
        sql = (
            f"SELECT {pk}, {columns} FROM {quote(model._meta.db_table)} "  # noqa: S608
            f"ORDER BY {pk} DESC LIMIT %s"
        )
        with conn.cursor() as cursor:
            cursor.execute(sql, [limit])
            rows = cursor.fetchall()
        for row in rows:
            for f, value in zip(fields, row[1:], strict=True):
                if value is not None and not _any_key_opens(f, bytes(value)):
                    problems.append(f"{model._meta.label} {row[0]} {f.name}")
    return problems
