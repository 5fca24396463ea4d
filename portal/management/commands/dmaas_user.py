"""Create or update a user from the operator's shell, optionally printing a new API token.

    python manage.py dmaas_user ana --role analyst --email ana@example.com --password-stdin < pw.txt
    TOKEN=$(python manage.py dmaas_user ci-bot --role viewer --token)

With --token, stdout carries the token and nothing else (so it can be captured); every other line
goes to stderr. Changes are audited with source "cli" and the operating-system user's name.
"""

from __future__ import annotations

import sys

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from models_service.access import Role
from portal import accounts, tokens

SOURCE = "cli"


class Command(BaseCommand):
    help = "Create or update a user with the given role(s); --token prints a new API token on stdout."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            action="append",
            choices=[role.value for role in Role],
            help="the user's role; repeat for several. Replaces the current roles. Required for a new user.",
        )
        parser.add_argument("--email")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from the first line of stdin"
        )
        parser.add_argument("--token", action="store_true", help="create an API token and print only it")
        parser.add_argument("--token-name", default="command line", help="the new token's name")
        parser.add_argument(
            "--token-days", type=int, help="days the token lives (default: DMAAS_API_TOKEN_DAYS)"
        )

    def handle(self, *args, username: str, role, email, password_stdin: bool, token: bool, **options):
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin read an empty password.")
        try:
            with transaction.atomic():
                user, created = accounts.ensure_user(
                    username, roles=role, email=email, password=password, source=SOURCE
                )
                issued = None
                if token:
                    # The system issues it (actor None would fail `require`): the user is the actor.
                    issued = tokens.create_token(
                        user, user, name=options["token_name"], days=options["token_days"], source=SOURCE
                    )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        roles = ", ".join(sorted(r.value for r in accounts.group_roles(user))) or "none"
        state = "created" if created else "updated"
        self.stderr.write(f"{state} user {user.get_username()} (roles: {roles})")
        if created and password is None:
            self.stderr.write("no password set: the user cannot log in until one is (--password-stdin)")
        if issued is not None:
            self.stderr.write(
                f"token {issued.token.display} expires {issued.token.expires_at:%Y-%m-%d %H:%M %Z}"
            )
            self.stdout.write(issued.raw)
