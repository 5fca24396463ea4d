"""Adopting an engineers' repository (its history kept) and syncing with a remote both ways."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from models_service import changes, merging, sync
from models_service.errors import InvalidName, RemoteError
from models_service.models import AuditEntry, ChangeRequest, IndexedNode, PushOutbox
from models_service.repo import forget_stores

from .conftest import approve, fsck, git, git_dir, spec

pytestmark = pytest.mark.django_db
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dbt_project_full"


def engineer_repo(path: Path, branch: str = "master") -> Path:
    """A plain clone-style repository with a dbt project in three commits by an engineer."""
    path.mkdir()
    git(path, "init", "-q", "-b", branch)
    git(path, "config", "user.name", "Erin Engineer")
    git(path, "config", "user.email", "erin@example.com")
    shutil.copytree(FIXTURE / "seeds", path / "seeds")
    shutil.copy(FIXTURE / "dbt_project.yml", path / "dbt_project.yml")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "Project and seeds")
    shutil.copytree(FIXTURE / "macros", path / "macros")
    shutil.copytree(FIXTURE / "models" / "staging", path / "models" / "staging")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "Staging models")
    shutil.copytree(FIXTURE / "models", path / "models", dirs_exist_ok=True)
    shutil.copytree(FIXTURE / "tests", path / "tests")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "Marts")
    return path


def test_import_adopts_a_project_with_its_history(tmp_path, repo, capsys):
    source = engineer_repo(tmp_path / "shop")
    call_command("dmaas_import", str(source))
    assert git_dir(repo, "rev-parse", "main") == git(source, "rev-parse", "HEAD")
    assert git_dir(repo, "log", "--format=%an|%s", "main").splitlines() == [
        "Erin Engineer|Marts", "Erin Engineer|Staging models", "Erin Engineer|Project and seeds"]
    models = set(IndexedNode.objects.filter(ref="main", kind="model").values_list("name", flat=True))
    assert {"stg_orders", "orders", "customers", "revenue_daily"} <= models
    assert IndexedNode.objects.filter(ref="main", kind="source").exists()
    assert IndexedNode.objects.filter(ref="main", kind="seed", name="country_codes").exists()
    assert "imported" in capsys.readouterr().out
    assert AuditEntry.objects.filter(action="repo.import").count() == 1
    assert not git_dir(repo, "for-each-ref", "refs/dmaas/")  # the temporary ref is gone
    fsck(repo)


def test_an_analyst_edits_an_imported_model_where_its_yml_already_is(tmp_path, repo, analyst):
    call_command("dmaas_import", str(engineer_repo(tmp_path / "shop")))
    change = changes.open_change(analyst, "Describe stg_orders")
    result = changes.save_model(analyst, change, "stg_orders", "select 1 as order_id\n",
                                spec("stg_orders", "Orders, cleaned"))
    assert result.sql_path == "models/staging/stg_orders.sql"
    assert result.yml_path == "models/staging/_staging.yml"
    changed = git_dir(repo, "diff", "--name-only", f"{result.sha}^", result.sha).splitlines()
    assert changed == ["models/staging/_staging.yml", "models/staging/stg_orders.sql"]


def test_import_refuses_what_is_not_a_dbt_project(tmp_path, repo):
    plain = tmp_path / "plain"
    plain.mkdir()
    git(plain, "init", "-q", "-b", "main")
    (plain / "README").write_text("hello")
    git(plain, "add", "-A")
    git(plain, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-m", "x")
    with pytest.raises(CommandError, match="no dbt_project.yml"):
        call_command("dmaas_import", str(plain))
    with pytest.raises(CommandError, match="transport helper"):
        call_command("dmaas_import", "ext::sh -c touch% /tmp/pwned")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("dmaas_import", str(tmp_path / "missing"))


def test_import_over_a_used_repository_needs_replace_and_keeps_the_old_main(tmp_path, repo, analyst, reviewer):
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", "select 1", spec("orders"))
    changes.submit_change(analyst, change)
    approve(change)
    old_main = merging.merge_change(reviewer, change).sha
    source = engineer_repo(tmp_path / "shop")
    with pytest.raises(CommandError, match="--replace"):
        call_command("dmaas_import", str(source))
    call_command("dmaas_import", str(source), "--replace")
    assert git_dir(repo, "rev-parse", "main") == git(source, "rev-parse", "HEAD")
    backups = git_dir(repo, "for-each-ref", "--format=%(objectname)", "refs/dmaas/replaced/").splitlines()
    assert backups == [old_main]


@pytest.fixture
def remote(tmp_path, settings):
    """A bare remote that the portal pushes to, and an engineer's clone of it."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    settings.DMAAS_REPO_REMOTE = str(remote)
    forget_stores()
    return remote


def engineer_clone(remote: Path, path: Path) -> Path:
    git(path.parent, "clone", "-q", str(remote), str(path))
    git(path, "config", "user.name", "Erin Engineer")
    git(path, "config", "user.email", "erin@example.com")
    return path


def test_saves_are_pushed_through_the_outbox(analyst, remote, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        change = changes.open_change(analyst, "x")
        result = changes.save_model(analyst, change, "orders", "select 1", spec("orders"))
    assert callbacks  # a push task is queued after each write's transaction
    row = PushOutbox.objects.get(ref=change.branch_name)
    assert row.pending and row.sha == result.sha
    assert sync.push_pending() == {"pushed": 1, "failed": 0}
    assert git_dir(remote, "rev-parse", change.branch) == result.sha
    assert not PushOutbox.objects.get(ref=change.branch_name).pending


def test_a_push_failure_never_loses_the_save_and_is_retried(analyst, remote, repo, tmp_path):
    moved = tmp_path / "remote-away.git"
    remote.rename(moved)  # the remote is unreachable
    change = changes.open_change(analyst, "x")
    result = changes.save_model(analyst, change, "orders", "select 1", spec("orders"))
    assert git_dir(repo, "rev-parse", change.branch) == result.sha  # saved
    assert sync.push_pending()["failed"] == 1
    row = PushOutbox.objects.get(ref=change.branch_name)
    assert row.pending and row.attempts == 1 and row.last_error
    moved.rename(remote)  # back
    report = sync.sync_remote()
    assert report.pushed["pushed"] >= 1
    assert git_dir(remote, "rev-parse", change.branch) == result.sha


def test_an_engineers_push_to_the_remote_shows_up_in_the_portal(analyst, remote, repo, tmp_path):
    change = changes.open_change(analyst, "waiting")
    changes.save_model(analyst, change, "orders", "select 1", spec("orders"))
    sync.sync_remote()  # pushes main and the change
    clone = engineer_clone(remote, tmp_path / "clone")
    (clone / "models" / "engineered.sql").write_text("select 42 as answer\n")
    (clone / "models" / "engineered.yml").write_text(
        "version: 2\nmodels:\n  - name: engineered\n    description: From an engineer\n")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "Add engineered")
    git(clone, "push", "-q", "origin", "main")

    report = sync.sync_remote()
    assert report.outcome == "fast-forward"
    assert git_dir(repo, "rev-parse", "main") == git(clone, "rev-parse", "HEAD")
    node = IndexedNode.objects.get(ref="main", name="engineered")
    assert node.description == "From an engineer"
    change = ChangeRequest.objects.get(pk=change.pk)
    assert change.needs_update and "main has moved on" in change.update_reason
    assert sync.sync_remote().outcome == "up to date"


def test_portal_and_engineer_both_moving_main_are_merged(analyst, reviewer, remote, repo, tmp_path):
    sync.sync_remote()
    clone = engineer_clone(remote, tmp_path / "clone")
    change = changes.open_change(analyst, "portal side")
    changes.save_model(analyst, change, "orders", "select 1", spec("orders"))
    changes.submit_change(analyst, change)
    approve(change)
    PushOutbox.objects.all().delete()  # as if the push had not happened yet
    portal_main = merging.merge_change(reviewer, change).sha
    PushOutbox.objects.all().delete()
    (clone / "models" / "engineered.sql").write_text("select 42 as answer\n")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "Add engineered")
    git(clone, "push", "-q", "origin", "main")

    report = sync.sync_remote()
    assert report.outcome == "merged"
    main = git_dir(repo, "rev-parse", "main")
    assert set(git_dir(repo, "log", "-1", "--format=%P", main).split()) == {portal_main, git(clone, "rev-parse", "HEAD")}
    assert git_dir(remote, "rev-parse", "main") == main  # and pushed back
    assert {"orders", "engineered"} <= set(IndexedNode.objects.filter(ref="main").values_list("name", flat=True))
    fsck(repo)


def test_the_sync_task_is_scheduled_by_beat(settings):
    from portal.celery import app

    app.loader.import_default_modules()
    assert "models_service.tasks.sync_remote" in app.tasks and "models_service.tasks.push_refs" in app.tasks
    entry = settings.CELERY_BEAT_SCHEDULE["dmaas-sync-remote"]
    assert entry["task"] == "models_service.tasks.sync_remote"
    assert entry["options"]["expires"] < entry["schedule"]


def test_loose_objects_are_packed_even_while_the_remote_is_away(analyst, remote, repo, tmp_path):
    """`git gc --auto` ran only after a successful fetch: with the remote down for days, every save's
    objects stayed loose. git samples objects/17 to decide: at gc.auto=1 two loose objects there are
    enough (they are kept reachable by a ref; gc leaves unreachable ones loose for weeks)."""
    change = changes.open_change(analyst, "x")
    changes.save_model(analyst, change, "orders", "select 1", spec("orders"))  # the repository exists
    git_dir(repo, "config", "gc.auto", "1")
    n = 0
    while len(list((repo / "objects" / "17").glob("*"))) < 2:
        sha = subprocess.run(["git", "--git-dir", str(repo), "hash-object", "-w", "--stdin"],
                             input=f"blob {n}".encode(), check=True, capture_output=True).stdout.decode().strip()
        if sha.startswith("17"):
            git_dir(repo, "update-ref", f"refs/test/kept-{n}", sha)
        n += 1
    remote.rename(tmp_path / "remote-away.git")  # the remote is unreachable
    with pytest.raises((RemoteError, InvalidName)):  # "There is no repository at ..."
        sync.sync_remote()
    deadline = time.monotonic() + 20  # `gc --auto` packs in the background (gc.autoDetach)
    while any((repo / "objects" / "17").glob("*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any((repo / "objects" / "17").glob("*")), "the loose objects were left unpacked"
