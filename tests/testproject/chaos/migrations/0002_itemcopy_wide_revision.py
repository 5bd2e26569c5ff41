from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chaos", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="itemcopy",
            name="cqrs_revision",
            field=models.BigIntegerField(),
        ),
    ]
