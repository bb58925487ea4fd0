"""Meetings become per app (docs/SECURITY.md "Tenancy"): a meeting row shared by several apps is split into one
row per app that has a share in it, each with a copy of the participants; a meeting no app has a share in goes
to the first registered app (or is dropped when no app is registered)."""

import django.db.models.deletion
from django.db import migrations, models


def split_meetings_per_app(apps, schema_editor):
    Meeting = apps.get_model("consent", "Meeting")
    Participant = apps.get_model("consent", "Participant")
    Share = apps.get_model("consent", "Share")
    ZoomApp = apps.get_model("marketplace", "ZoomApp")
    fallback_app = ZoomApp.objects.order_by("id").first()
    for meeting in Meeting.objects.filter(app__isnull=True):
        app_ids = list(Share.objects.filter(meeting=meeting).values_list("app_id", flat=True).distinct().order_by("app_id"))
        if not app_ids:
            if fallback_app is None:
                meeting.delete()
            else:
                meeting.app_id = fallback_app.id
                meeting.save(update_fields=["app"])
            continue
        meeting.app_id = app_ids[0]
        meeting.save(update_fields=["app"])
        people = list(Participant.objects.filter(meeting=meeting))
        for app_id in app_ids[1:]:
            copy = Meeting.objects.get(pk=meeting.pk)
            copy.pk = None
            copy.app_id = app_id
            copy.save()
            for person in people:
                person.pk = None
                person.meeting_id = copy.pk
                person.save()
            Share.objects.filter(meeting=meeting, app_id=app_id).update(meeting=copy)


class Migration(migrations.Migration):

    dependencies = [
        ("consent", "0001_initial"),
        ("marketplace", "0002_pendingauthorization_userauthorization"),
    ]

    operations = [
        migrations.AddField(
            model_name="meeting",
            name="app",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="meetings",
                                    to="marketplace.zoomapp"),
        ),
        migrations.AlterField(model_name="meeting", name="uuid", field=models.CharField(max_length=100)),
        migrations.RunPython(split_meetings_per_app, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="meeting",
            name="app",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="meetings",
                                    to="marketplace.zoomapp"),
        ),
        migrations.AddConstraint(
            model_name="meeting",
            constraint=models.UniqueConstraint(fields=("app", "uuid"), name="one_meeting_per_app"),
        ),
    ]
