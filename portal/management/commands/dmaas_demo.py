"""Create the demo logins for a development install (`scripts/dev` runs this on every start).

Idempotent: the generated password is kept in var/demo-logins.json, and each run makes the users
match that file, so the printed logins always work. Refused outside DEBUG: a superuser with a
password printed to a terminal has no place in production.
"""

import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_USERS = {"admin": {"is_staff": True, "is_superuser": True}}


class Command(BaseCommand):
    help = "Create or refresh the demo users of a development install and print their logins."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="run even when DEBUG is off")

    def handle(self, *args, force: bool = False, **options):
        if not (settings.DEBUG or force):
            raise CommandError("dmaas_demo creates known logins: run it only with DMAAS_DEBUG=1 (or --force).")
        logins_file = settings.VAR_DIR / "demo-logins.json"
        passwords = json.loads(logins_file.read_text()) if logins_file.exists() else {}
        for username, flags in DEMO_USERS.items():
            password = passwords.setdefault(username, secrets.token_urlsafe(12))
            ensure_user(username, password, **flags)
            self.stdout.write(f"  {username:<10} {password}")
        logins_file.write_text(json.dumps(passwords, indent=2))
        logins_file.chmod(0o600)


def ensure_user(username: str, password: str, **flags: bool) -> None:
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
    changed = [name for name, value in flags.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, flags[name])
    if not user.is_active:
        user.is_active = True
        changed.append("is_active")
    if not user.check_password(password):
        user.set_password(password)
        changed.append("password")
    if changed:
        user.save(update_fields=changed)
