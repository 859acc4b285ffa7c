import secrets

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import lookout_xero.models


def give_each_connection_a_webhook_id(apps, schema_editor):
    """One id per existing row: a column default would give every row the same one."""
    XeroConnection = apps.get_model("lookout_xero", "XeroConnection")
    for pk in XeroConnection.objects.filter(webhook_id__isnull=True).values_list("pk", flat=True):
        XeroConnection.objects.filter(pk=pk).update(webhook_id=secrets.token_urlsafe(24))


def links_archived_so_far_were_archived_by_lookout(apps, schema_editor):
    """Until now only Lookout archived contacts (and restored them): keep restoring those."""
    XeroContactLink = apps.get_model("lookout_xero", "XeroContactLink")
    XeroContactLink.objects.filter(xero_contact_status="ARCHIVED").update(archived_by="lookout")


class Migration(migrations.Migration):
    dependencies = [
        ("lookout_xero", "0004_credentials_links"),
    ]

    operations = [
        migrations.AddField(
            model_name="xeroconnection",
            name="last_webhook_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="xeroconnection",
            name="webhook_id",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(give_each_connection_a_webhook_id, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="xeroconnection",
            name="webhook_id",
            field=models.CharField(
                default=lookout_xero.models.new_webhook_id,
                editable=False,
                max_length=64,
                unique=True,
            ),
        ),
        migrations.AddField(
            model_name="xerocontactlink",
            name="archived_by",
            field=models.CharField(
                blank=True,
                choices=[("lookout", "Lookout"), ("xero", "Someone in Xero")],
                max_length=10,
            ),
        ),
        migrations.RunPython(
            links_archived_so_far_were_archived_by_lookout, migrations.RunPython.noop
        ),
        migrations.AddField(
            model_name="xerocontactlink",
            name="drift",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="xerocontactlink",
            name="drift_seen_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="xerocontactlink",
            name="last_sent",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="xerocontactlink",
            name="merged_into",
            field=models.CharField(blank=True, max_length=36),
        ),
        migrations.AlterField(
            model_name="synclog",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("linked", "Linked to existing"),
                    ("updated", "Updated"),
                    ("unchanged", "Unchanged"),
                    ("archived", "Archived"),
                    ("restored", "Restored"),
                    ("conflict", "Conflict"),
                    ("failed", "Failed"),
                    ("retrying", "Will retry"),
                    ("paused", "Paused by Xero's limits"),
                    ("followed_merge", "Followed a merge in Xero"),
                    ("held", "Held: the bookkeeper's decision in Xero"),
                    ("resumed", "Restored in Xero"),
                    ("drift", "Changed in Xero"),
                    ("connection_error", "Connection error"),
                    ("run", "Run event"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="xerocontactlink",
            name="matched_by",
            field=models.CharField(
                blank=True,
                choices=[
                    ("created", "Created by Lookout"),
                    ("contact_number", "Contact number"),
                    ("email", "E-mail"),
                    ("name", "Name"),
                    ("person", "Chosen by a person"),
                    ("merge", "Followed a merge in Xero"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="xerocontactlink",
            name="state",
            field=models.CharField(
                choices=[
                    ("pending", "Not yet in Xero"),
                    ("synced", "Synced"),
                    ("conflict", "Conflict"),
                    ("failed", "Failed"),
                    ("ignored", "Not synced (by choice)"),
                    ("xarchived", "Archived in Xero"),
                    ("gdpr", "GDPR request in Xero"),
                ],
                default="pending",
                max_length=10,
            ),
        ),
        migrations.CreateModel(
            name="XeroWebhookEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("xero_contact_id", models.CharField(max_length=36, verbose_name="Xero ContactID")),
                ("event_type", models.CharField(blank=True, max_length=20)),
                ("event_date", models.CharField(blank=True, max_length=40)),
                ("received_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                (
                    "connection",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="webhook_events",
                        to="lookout_xero.xeroconnection",
                    ),
                ),
            ],
            options={
                "verbose_name": "Xero webhook event",
                "indexes": [models.Index(fields=["connection", "id"], name="lx_event_conn_id")],
            },
        ),
    ]
