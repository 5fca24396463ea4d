import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from models_service.access import Role, roles_of

pytestmark = pytest.mark.django_db

EXPECTED = {"ana": Role.ANALYST, "rita": Role.REVIEWER, "adam": Role.ADMIN, "vic": Role.VIEWER, "lena": Role.LEGAL}


def demo_logins(capsys) -> dict[str, tuple[str, str]]:
    """username -> (password, role), as scripts/dev prints them."""
    call_command("dmaas_demo")
    lines = capsys.readouterr().out.splitlines()
    return {name: (password, role) for name, password, role in (line.split() for line in lines)}


def test_demo_creates_a_user_per_role_whose_printed_password_works_on_every_run(settings, tmp_path, capsys):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    first = demo_logins(capsys)
    second = demo_logins(capsys)
    assert first == second
    assert set(first) == set(EXPECTED)
    for username, role in EXPECTED.items():
        user = get_user_model().objects.get(username=username)
        assert roles_of(user) == {role} and first[username][1] == role.value
        assert user.check_password(first[username][0])
        assert not user.is_superuser
    assert get_user_model().objects.get(username="adam").is_staff  # the Django admin opens for the admin


def test_demo_repairs_a_changed_password_and_role(settings, tmp_path, capsys):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    password = demo_logins(capsys)["ana"][0]
    ana = get_user_model().objects.get(username="ana")
    ana.set_password("something else entirely")
    ana.is_active = False
    ana.save()
    ana.groups.clear()
    assert demo_logins(capsys)["ana"][0] == password
    ana = get_user_model().objects.get(username="ana")
    assert ana.check_password(password) and ana.is_active and roles_of(ana) == {Role.ANALYST}


def test_demo_refuses_to_run_outside_debug(settings, tmp_path):
    settings.DEBUG = False
    settings.VAR_DIR = tmp_path
    with pytest.raises(CommandError, match="DMAAS_DEBUG=1"):
        call_command("dmaas_demo")
    assert not get_user_model().objects.filter(username="ana").exists()


@pytest.mark.django_db(transaction=True)
def test_demo_data_builds_main_and_submits_a_change_once(settings, tmp_path, capsys):
    from models_service import repo as repo_module
    from models_service.models import ChangeRequest
    from runner import warehouse as wh

    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    settings.DMAAS_REPO = str(tmp_path / "data-models.git")
    settings.DMAAS_WAREHOUSE = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    repo_module.forget_stores()
    wh.forget_warehouses()
    try:
        call_command("dmaas_demo")
        call_command("dmaas_demo_data")
        call_command("dmaas_demo_data")  # a second start changes nothing
        change = ChangeRequest.objects.get()
        assert change.state == "submitted" and change.author.username == "ana"
        with wh.get_warehouse().build() as adapter:
            assert adapter.fetchall("select count(*) from analytics.orders") == [(6,)]
            assert adapter.fetchall("select count(*) from analytics.customer_revenue") == [(3,)]  # Cy only returned
    finally:
        repo_module.forget_stores()
        wh.forget_warehouses()
