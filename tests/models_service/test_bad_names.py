"""Names that must never reach git or the file system (RELIABILITY B5, B6, B7): refused with a clear
error before anything is written — refs and the object store are unchanged."""

import pytest

from models_service import changes
from models_service.errors import InvalidInput, InvalidName
from models_service.git_store import names, remote
from models_service.repo import get_store

from .conftest import object_count, refs, spec

pytestmark = pytest.mark.django_db

BAD_MODEL_NAMES = [
    "../x", "/abs", "a\x00b", ".git/config", "-rf", "a" * 200, "оrders",  # Cyrillic о
    "a b", "Orders", "", "orders;drop", "a/b", "models/../../etc", "\\windows", "--upload-pack=evil",
    "select", "x\n", "ｏrders",  # fullwidth
]


@pytest.mark.parametrize("bad", BAD_MODEL_NAMES)
def test_bad_model_names_are_refused_and_nothing_is_written(analyst, repo, bad):
    change = changes.open_change(analyst, "Names")
    before_refs, before_objects = refs(repo), object_count(repo)
    with pytest.raises(InvalidName) as caught:
        changes.save_model(analyst, change, bad, "select 1", spec("x"))
    assert "model name" in str(caught.value).lower()
    assert refs(repo) == before_refs
    assert object_count(repo) == before_objects
    assert not any(p.name.startswith(("x", "etc", "config")) for p in repo.parent.iterdir() if p != repo)


def test_refusals_say_why_in_plain_words(analyst):
    change = changes.open_change(analyst, "Names")
    with pytest.raises(InvalidName, match="only look like plain letters.*CYRILLIC"):
        changes.save_model(analyst, change, "оrders", "select 1", spec("x"))
    with pytest.raises(InvalidName, match="63 is the most"):
        changes.save_model(analyst, change, "a" * 200, "select 1", spec("x"))
    with pytest.raises(InvalidName, match="lower-case letters"):
        changes.save_model(analyst, change, "Orders", "select 1", spec("x"))


@pytest.mark.parametrize("folder", ["../outside", "/etc", "a\\b", ".git", "-x", "sub/../..", "a\x00", "ü"])
def test_bad_folders_for_a_new_model_are_refused(analyst, repo, folder):
    change = changes.open_change(analyst, "Folders")
    before_refs, before_objects = refs(repo), object_count(repo)
    with pytest.raises(InvalidName):
        changes.save_model(analyst, change, "orders", "select 1", spec("orders"), folder=folder)
    assert refs(repo) == before_refs and object_count(repo) == before_objects


@pytest.mark.parametrize("path", [
    "../x.sql", "/models/x.sql", "models/../x.sql", "models/.git/x.sql", "models/-x.sql", "models\\x.sql",
    "models/x\x00.sql", "seeds/x.sql", "models/x.py", "models/" + "a" * 300 + ".sql", "models//x.sql",
    "models/./x.sql", "models/.GIT/config.yml", "models/оrders.sql",
])
def test_paths_outside_models_are_refused(path):
    with pytest.raises(InvalidName):
        names.model_path(path)


@pytest.mark.parametrize("title", ["--upload-pack=touch /tmp/x", "a..b", "x.lock", "@{-1}", "  spaced title  ",
                                   "Ünïcödé", "refs/heads/main", "-", "../../HEAD"])
def test_branch_names_are_generated_from_any_title_safely(analyst, repo, title):
    change = changes.open_change(analyst, title)
    assert names.CHANGE_REF_RE.match(change.branch), change.branch
    assert change.branch.startswith(f"refs/heads/changes/{change.pk}-")
    assert set(refs(repo)) == {"refs/heads/main", change.branch}


def test_empty_titles_are_refused(analyst):
    with pytest.raises(InvalidInput):
        changes.open_change(analyst, "   ")


@pytest.mark.parametrize("url", ["ext::sh -c touch% /tmp/pwned", "fd::3", "--upload-pack=touch /tmp/x",
                                 "git://example.com/x.git", "http://example.com/x.git", "ftp://x/y",
                                 "transport::whatever", " /tmp/x", "https://example.com/x\n"])
def test_dangerous_repository_urls_are_refused(url, repo):
    get_store()
    with pytest.raises(InvalidName):
        remote.checked_url(url)


def test_git_itself_refuses_the_ext_transport(tmp_path):
    store = get_store()
    proc = store.git.run("ls-remote", "--", "ext::sh -c touch% " + str(tmp_path / "pwned"), network=True,
                         check=False)
    assert proc.returncode != 0 and b"not allowed" in proc.stderr
    assert not (tmp_path / "pwned").exists()
