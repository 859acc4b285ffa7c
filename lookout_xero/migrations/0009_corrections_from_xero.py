"""Corrections made in Xero flowing back into Lookout (issue 21): each connection's field
directions, the read of changed contacts' watermark, and links waiting for a decision."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("lookout_xero", "0008_outbox_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="xeroconnection",
            name="changes_read_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="xeroconnection",
            name="directions",
            field=models.JSONField(blank=True, default=dict, editable=False),
        ),
        migrations.AddField(
            model_name="xerocontactlink",
            name="decision_since",
            field=models.DateTimeField(blank=True, null=True),
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
                    ("taken", "Taken from Xero"),
                    ("kept", "Kept Lookout's value"),
                    ("refused", "Refused from Xero"),
                    ("connection_error", "Connection error"),
                    ("run", "Run event"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="xeroalert",
            name="kind",
            field=models.CharField(
                choices=[
                    ("error", "Xero refused the connection"),
                    ("paused", "Paused by Xero's daily call limit"),
                    ("conflicts", "Conflicts waiting for a person"),
                    ("failures", "Funders failing to sync"),
                    ("decisions", "Changes in Xero waiting for a decision"),
                ],
                max_length=12,
            ),
        ),
        migrations.AddIndex(
            model_name="xerocontactlink",
            index=models.Index(
                fields=["connection", "decision_since"], name="lx_link_conn_decision"
            ),
        ),
    ]
