import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import lookout_xero.fields


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.LOOKOUT_XERO_ORGANISATION_MODEL),
        ("lookout_xero", "0003_lease_heartbeats"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="xeroconnection",
            name="credentials_received_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="xeroconnection",
            name="granted_scopes",
            field=models.CharField(blank=True, editable=False, max_length=1000),
        ),
        migrations.AddField(
            model_name="xeroconnection",
            name="webhook_key",
            field=lookout_xero.fields.EncryptedCharField(
                blank=True, default="", max_length=255, verbose_name="Webhook key"
            ),
        ),
        migrations.AlterField(
            model_name="xeroconnection",
            name="access_token",
            field=lookout_xero.fields.EncryptedTextField(blank=True, default="", editable=False),
        ),
        migrations.AlterField(
            model_name="xeroconnection",
            name="client_id",
            field=lookout_xero.fields.EncryptedCharField(max_length=255, verbose_name="Client ID"),
        ),
        migrations.AlterField(
            model_name="xeroconnection",
            name="client_secret",
            field=lookout_xero.fields.EncryptedCharField(
                max_length=255, verbose_name="Client Secret"
            ),
        ),
        migrations.CreateModel(
            name="XeroCredentialsLink",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("token_hash", models.CharField(editable=False, max_length=64, unique=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
                ("opened_at", models.DateTimeField(blank=True, null=True)),
                ("tries", models.PositiveSmallIntegerField(default=0)),
                ("used_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                ("xero_tenant_name", models.CharField(blank=True, max_length=255)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "organisation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="xero_credentials_links",
                        to=settings.LOOKOUT_XERO_ORGANISATION_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "Xero credentials link",
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(
                        fields=["organisation", "-created_at"], name="lx_credlink_org_created"
                    )
                ],
            },
        ),
    ]
