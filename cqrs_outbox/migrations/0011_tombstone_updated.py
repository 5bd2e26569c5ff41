"""Keep the master's time of each DELETE with its tombstone, to tell a row created again
from a late copy of an event from before the DELETE; older tombstones have none."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cqrs_outbox", "0010_mysql_outbox")]

    operations = [
        migrations.AddField(
            model_name="tombstone",
            name="updated",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
