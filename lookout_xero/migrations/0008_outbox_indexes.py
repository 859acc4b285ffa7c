"""Fewer indexes on the outbox, the one table a funder save writes to.

Each funder save that queues inserts an outbox row, so every index on it is paid for by the
host's saves. Django gave each foreign key its own index: the connection's repeats the leading
column of the due index, the funder's is served by the unique constraint once it leads with the
funder, and the run's need only hold the rows a full sync owns (a save's row has no run).
Six indexes become four, of which a save's row enters three.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.LOOKOUT_XERO_FUNDER_MODEL),
        ("lookout_xero", "0007_drop_trigger"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="outboxentry",
            name="lx_outbox_one_per_funder",
        ),
        migrations.AlterField(
            model_name="outboxentry",
            name="connection",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="outbox",
                to="lookout_xero.xeroconnection",
            ),
        ),
        migrations.AlterField(
            model_name="outboxentry",
            name="funder",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to=settings.LOOKOUT_XERO_FUNDER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="outboxentry",
            name="run",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="lookout_xero.syncrun",
            ),
        ),
        migrations.AddIndex(
            model_name="outboxentry",
            index=models.Index(
                condition=models.Q(("run__isnull", False)), fields=["run"], name="lx_outbox_run"
            ),
        ),
        migrations.AddConstraint(
            model_name="outboxentry",
            constraint=models.UniqueConstraint(
                fields=("funder", "connection"), name="lx_outbox_one_per_funder"
            ),
        ),
    ]
