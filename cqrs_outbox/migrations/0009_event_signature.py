"""Keep each event's signature next to its payload, so the relay sends it without a secret."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cqrs_outbox", "0008_outbox_autovacuum")]

    operations = [
        migrations.AddField(
            model_name="outboxevent",
            name="signature",
            field=models.CharField(
                blank=True,
                help_text="The cqrs-signature header sent with the payload: scheme;key id;"
                "signature.",
                max_length=255,
                null=True,
            ),
        ),
    ]
