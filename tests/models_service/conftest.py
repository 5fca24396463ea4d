"""Fixtures for the data-models service: a fresh bare repository per test, personas, and git helpers.

Every test gets its own repository (settings.DMAAS_REPO under tmp_path), created on first use with
the project skeleton, exactly as a fresh install would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from models_service import repo as repo_module
from models_service.access import Role
from models_service.project_files import ColumnSpec, ModelSpec, TestSpec


@pytest.fixture(autouse=True)
def repo(tmp_path, settings) -> Path:
    """The path of this test's bare data-models repository (created on first use)."""
    path = tmp_path / "data-models.git"
    settings.DMAAS_REPO = str(path)
    settings.DMAAS_REPO_REMOTE = ""
    repo_module.forget_stores()
    yield path
    repo_module.forget_stores()


@pytest.fixture
def store(repo):
    return repo_module.get_store()


def make_user(django_user_model, username: str, *roles: Role, full_name: str = ""):
    first, _, last = full_name.partition(" ")
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "pw",
                                                 first_name=first, last_name=last)
    for role in roles:
        group, _ = Group.objects.get_or_create(name=role.value)
        user.groups.add(group)
    return user


@pytest.fixture
def analyst(django_user_model):
    return make_user(django_user_model, "alice", Role.ANALYST, full_name="Alice Analyst")


@pytest.fixture
def other_analyst(django_user_model):
    return make_user(django_user_model, "bob", Role.ANALYST, full_name="Bob Builder")


@pytest.fixture
def reviewer(django_user_model):
    return make_user(django_user_model, "rita", Role.REVIEWER, full_name="Rita Reviewer")


@pytest.fixture
def admin(django_user_model):
    return make_user(django_user_model, "adam", Role.ADMIN, full_name="Adam Admin")


@pytest.fixture
def viewer(django_user_model):
    return make_user(django_user_model, "vera", Role.VIEWER, full_name="Vera Viewer")


def spec(name: str, description: str = "", columns: tuple[str, ...] = (), tests: tuple[str, ...] = ()) -> ModelSpec:
    return ModelSpec(name=name, description=description,
                     columns=[ColumnSpec(name=c, tests=[TestSpec(t) for t in tests]) for c in columns])


def git(path: Path | str, *args: str, input: bytes | None = None) -> str:
    """Run git on a repository (bare or not) the way an engineer would; returns stdout."""
    proc = subprocess.run(["git", "-C", str(path), *args], input=input, capture_output=True, check=True)
    return proc.stdout.decode().strip()


def fsck(path: Path | str) -> str:
    proc = subprocess.run(["git", "--git-dir", str(path), "fsck", "--full", "--no-dangling", "--no-progress"],
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    return (proc.stdout + proc.stderr).decode()


def object_count(path: Path | str) -> tuple[int, int]:
    """(loose objects, objects in packs)."""
    out = dict(line.split(": ") for line in git_dir(path, "count-objects", "-v").splitlines())
    return int(out["count"]), int(out["in-pack"])


def git_dir(path: Path | str, *args: str) -> str:
    proc = subprocess.run(["git", "--git-dir", str(path), *args], capture_output=True, check=True)
    return proc.stdout.decode().strip()


def refs(path: Path | str) -> dict[str, str]:
    out = git_dir(path, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ") for line in out.splitlines() if line)


def approve(change):
    """What the review issue's approve_change will do: approve the change at its current head."""
    from models_service.models import ChangeRequest
    from models_service.repo import get_store

    head = get_store().tip(change.branch)
    assert ChangeRequest.objects.filter(pk=change.pk, state="submitted").update(
        state="approved", approved_sha=head, head_sha=head) == 1
    change.refresh_from_db()
    return change
