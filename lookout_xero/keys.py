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
from django.db.models import BinaryField, ExpressionWrapper, F, QuerySet
from fernet_fields import EncryptedField

BATCH_SIZE = 200


def encrypted_columns() -> list[tuple[type, list]]:
    """Every lookout_xero model with encrypted fields, and those fields."""
    found = []
    for model in apps.get_app_config("lookout_xero").get_models():
        fields = _encrypted_fields(model)
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


STORED_PREFIX = "lx_stored_"


def with_stored_bytes(queryset: QuerySet) -> QuerySet:
    """Annotate each encrypted field's stored bytes (`lx_stored_<name>`), read past decryption.

    Typed as plain bytes, so loading a row never decrypts anything (`cannot_open` does that,
    and only says whether it could): a read path can learn that a key is lost without failing.
    """
    fields = _encrypted_fields(queryset.model)
    return queryset.annotate(
        **{
            f"{STORED_PREFIX}{f.name}": ExpressionWrapper(F(f.name), output_field=BinaryField())
            for f in fields
        }
    )


def cannot_open(instance) -> list[str]:
    """The labels of the fields (annotated by `with_stored_bytes`) no key in FERNET_KEYS opens."""
    labels = []
    for f in _encrypted_fields(type(instance)):
        value = getattr(instance, f"{STORED_PREFIX}{f.name}", None)
        if value is not None and not _any_key_opens(f, bytes(value)):
            labels.append(str(f.verbose_name))
    return labels


def record_lost_keys() -> int:
    """Put each connection with a value no key opens in error, as a worker meeting it would.

    One query over the connections not already marked; returns how many were marked now.
    """
    from .fields import UndecryptableError
    from .models import XeroConnection
    from .services.calls import record_undecryptable

    marked = 0
    unmarked = XeroConnection.objects.exclude(error_code="undecryptable").only("pk")
    for connection in with_stored_bytes(unmarked):
        labels = cannot_open(connection)
        if labels:
            label = f"{XeroConnection._meta.verbose_name.capitalize()}'s {', '.join(labels)}"
            record_undecryptable(connection.pk, UndecryptableError(label))
            marked += 1
    return marked


def _encrypted_fields(model) -> list:
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]


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
