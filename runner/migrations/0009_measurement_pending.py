from django.db import migrations, models


class Migration(migrations.Migration):
    """A production run's node notes its builds; its judging task measures and judges them after the run
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
    ]
