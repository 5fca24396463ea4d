from django.db import migrations, models


def judged_already(apps, schema_editor):
    # before this migration a run's builds were measured and judged in its nodes
    Run = apps.get_model("runner", "Run")
    Run.objects.filter(finished_at__isnull=False).update(judged_at=models.F("finished_at"))


class Migration(migrations.Migration):
    """A production run's builds are measured and judged after the run, by its judging task
    (runner.observe.record.judge_run)."""

    dependencies = [
        ('runner', '0008_node_and_incident_timeout'),
    ]

    operations = [
        migrations.AddField(
            model_name='measurement',
            name='pending',
            field=models.BooleanField(default=False),
        ),
        migrations.AddIndex(
            model_name='measurement',
            index=models.Index(condition=models.Q(('pending', True)), fields=['run'], name='runner_measure_pending'),
        ),
        migrations.AddField(
            model_name='run',
            name='judged_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(judged_already, migrations.RunPython.noop),
    ]
