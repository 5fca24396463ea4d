from django.db import migrations, models


def judged_already(apps, schema_editor):
    # before this migration a production measurement was judged as it was saved
    Measurement = apps.get_model("runner", "Measurement")
    Measurement.objects.filter(kind="production").update(judged_at=models.F("measured_at"))


class Migration(migrations.Migration):
    """A run's measurements are judged once the run has ended (runner.observe.record.judge_run)."""

    dependencies = [
        ('runner', '0008_node_and_incident_timeout'),
    ]

    operations = [
        migrations.AddField(
            model_name='measurement',
            name='judged_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(judged_already, migrations.RunPython.noop),
    ]
