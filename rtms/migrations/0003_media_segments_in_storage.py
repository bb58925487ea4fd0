from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rtms", "0002_stream_account_and_connect_claims"),
    ]

    operations = [
        # Files indexed before segments were uploaded already live where the index says: stored.
        migrations.AddField(
            model_name="mediafile",
            name="stored",
            field=models.BooleanField(default=True, help_text="uploaded to storage; false while in a worker's spool"),
        ),
        migrations.AlterField(
            model_name="mediafile",
            name="stored",
            field=models.BooleanField(default=False, help_text="uploaded to storage; false while in a worker's spool"),
        ),
        migrations.AddField(
            model_name="mediafile",
            name="node",
            field=models.CharField(blank=True, help_text="the worker process that wrote it", max_length=200),
        ),
    ]
