"""The operator's command: `manage.py dmaas_user NAME --role R [--email E] [--password-stdin] [--token]`."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from models_service.access import Role, roles_of
from models_service.models.audit import AuditEntry
from portal import tokens

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("dmaas_user", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _stdin(monkeypatch):
    """call_command does not replace sys.stdin; tests hand the password in through it."""
    holder = {}

    def feed(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))

    holder["feed"] = feed
    return holder


def test_creates_a_user_with_a_role_and_prints_only_the_token(_stdin):
    _stdin["feed"]("a long and fine password 7\n")
    out, err = run("ana", "--role", "analyst", "--email", "ana@example.com", "--password-stdin", "--token")
    user = get_user_model().objects.get(username="ana")
    assert roles_of(user) == {Role.ANALYST} and user.email == "ana@example.com"
    assert user.check_password("a long and fine password 7")
    assert out.count("\n") == 1 and tokens.authenticate(out.strip()).user == user
    assert "created user ana" in err
    sources = set(AuditEntry.objects.values_list("source", flat=True))
    assert sources == {"cli"}
    assert AuditEntry.objects.get(action="role.change").details["after"] == ["analyst"]


def test_without_token_stdout_stays_empty():
    out, err = run("vic", "--role", "viewer")
    assert out == ""
    assert "cannot log in until" in err
    assert not get_user_model().objects.get(username="vic").has_usable_password()


def test_updates_roles_and_email_of_an_existing_user():
    run("rita", "--role", "analyst")
    run("rita", "--role", "reviewer", "--role", "analyst", "--email", "rita@example.com")
    user = get_user_model().objects.get(username="rita")
    assert roles_of(user) == {Role.REVIEWER, Role.ANALYST} and user.email == "rita@example.com"
    assert AuditEntry.objects.filter(action="role.change").count() == 2


def test_an_update_without_role_keeps_the_roles():
    run("adam", "--role", "admin")
    run("adam", "--email", "adam@example.com")
    assert roles_of(get_user_model().objects.get(username="adam")) == {Role.ADMIN}


def test_a_new_user_needs_a_role():
    with pytest.raises(CommandError, match="needs a role"):
        run("nobody")
    assert not get_user_model().objects.filter(username="nobody").exists()


def test_an_unknown_role_is_refused():
    with pytest.raises(CommandError, match="invalid choice"):
        run("x", "--role", "wizard")


def test_a_weak_password_is_refused_and_nothing_is_created(_stdin):
    _stdin["feed"]("password\n")
    with pytest.raises(CommandError, match="too common"):
        run("weak", "--role", "viewer", "--password-stdin")
    assert not get_user_model().objects.filter(username="weak").exists()


def test_an_empty_password_is_refused(_stdin):
    _stdin["feed"]("\n")
    with pytest.raises(CommandError, match="empty password"):
        run("weak", "--role", "viewer", "--password-stdin")


def test_in_a_real_shell_stdout_carries_the_token_alone(tmp_path):
    """As an operator runs it, `TOKEN=$(manage.py dmaas_user ... --token)`: nothing else on stdout."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DMAAS_", "CELERY_")) and k != "DATABASE_URL"
    }
    env |= {"DMAAS_DEBUG": "1", "DMAAS_VAR_DIR": str(tmp_path / "var")}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, cwd=REPO, check=True, capture_output=True)
    result = subprocess.run(
        [*manage, "dmaas_user", "ci", "--role", "viewer", "--password-stdin", "--token"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        input="a long and fine password 7\n",
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"dmaas_[0-9a-f]{8}_[A-Za-z0-9_-]{43}\n", result.stdout)
    assert "created user ci" in result.stderr


def test_a_role_change_revokes_older_tokens():
    first, _ = run("bot", "--role", "viewer", "--token")
    run("bot", "--role", "analyst")
    with pytest.raises(tokens.TokenInvalid, match="revoked"):
        tokens.authenticate(first.strip())
