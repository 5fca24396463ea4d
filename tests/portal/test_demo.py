import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def demo_logins(capsys) -> dict[str, str]:
    call_command("dmaas_demo")
    return dict(line.split() for line in capsys.readouterr().out.splitlines())


def test_demo_creates_an_admin_whose_printed_password_works_on_every_run(settings, tmp_path, capsys):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    first = demo_logins(capsys)
    second = demo_logins(capsys)
    assert first == second
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(first["admin"])


def test_demo_repairs_a_changed_password(settings, tmp_path, capsys):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    password = demo_logins(capsys)["admin"]
    admin = get_user_model().objects.get(username="admin")
    admin.set_password("something else entirely")
    admin.save()
    assert demo_logins(capsys)["admin"] == password
    admin.refresh_from_db()
    assert admin.check_password(password)


def test_demo_refuses_to_run_outside_debug(settings, tmp_path):
    settings.DEBUG = False
    settings.VAR_DIR = tmp_path
    with pytest.raises(CommandError, match="DMAAS_DEBUG=1"):
        call_command("dmaas_demo")
    assert not get_user_model().objects.filter(username="admin").exists()
