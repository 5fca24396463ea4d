"""Create the demo logins for a development install (`scripts/dev` runs this on every start).

One user per role: ana (analyst), rita (reviewer), adam (platform admin), vic (viewer), lena (legal).
Idempotent: the generated passwords are kept in var/demo-logins.json, and each run makes the users
match that file, so the printed logins always work. Refused outside DEBUG: known logins printed to
a terminal have no place in production.
"""

import json
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal import accounts

DEMO_USERS = {"ana": "analyst", "rita": "reviewer", "adam": "admin", "vic": "viewer", "lena": "legal"}


class Command(BaseCommand):
    help = "Create or refresh the demo users of a development install and print their logins."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="run even when DEBUG is off")

    def handle(self, *args, force: bool = False, **options):
        if not (settings.DEBUG or force):
            raise CommandError(
                "dmaas_demo creates known logins: run it only with DMAAS_DEBUG=1 (or --force)."
            )
        logins_file = settings.VAR_DIR / "demo-logins.json"
        passwords = json.loads(logins_file.read_text()) if logins_file.exists() else {}
        for username, role in DEMO_USERS.items():
            password = passwords.setdefault(username, secrets.token_urlsafe(12))
            ensure_demo_user(username, password, role)
            self.stdout.write(f"  {username:<6} {password}  {role}")
        logins_file.write_text(json.dumps(passwords, indent=2))
        logins_file.chmod(0o600)


def ensure_demo_user(username: str, password: str, role: str) -> None:
    user, _ = accounts.ensure_user(username, roles=[role], email=f"{username}@example.com", source="cli")
    changed = []
    if not user.is_active:
        user.is_active = True
        changed.append("is_active")
    if not user.check_password(password):
        # Set directly: a generated demo password need not pass the validators' dictionary check.
        user.set_password(password)
        changed.append("password")
    if changed:
        user.save(update_fields=changed)
