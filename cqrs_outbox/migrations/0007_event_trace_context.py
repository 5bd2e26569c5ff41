"""Keep each event's W3C trace context, so the relay can send it on as message headers."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cqrs_outbox", "0006_outbox_server_defaults")]

    operations = [
        migrations.AddField(
            model_name="outboxevent",
            name="traceparent",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="outboxevent",
            name="tracestate",
            field=models.CharField(blank=True, max_length=512, null=True),
        ),
    ]
