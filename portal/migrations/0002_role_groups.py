"""One Django group per role of models_service.access.Role, so the admin offers them from the start.

The role names are written out rather than imported: a migration must keep meaning what it meant
when it was written, whatever Role becomes later.
"""

from django.db import migrations

ROLES = ("analyst", "reviewer", "admin", "viewer", "legal", "security")


def create_groups(apps, schema_editor):
    group = apps.get_model("auth", "Group")
    for name in ROLES:
        group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("portal", "0001_tokens_and_login_guard"),
    ]

    # Reversing leaves the groups: they may hold members by then.
    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
