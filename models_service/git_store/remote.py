"""Talking to other repositories: fetch (import, sync) and push, over file, ssh and https only.

Every command carries `protocol.allow=never` with file, ssh and https allowed (so `ext::` and
other transport helpers are refused by git itself, not only by names.repository_url), `--` before
the URL, no terminal prompt, and a time limit.
"""

from __future__ import annotations

import os
import subprocess

from ..errors import InvalidName, RemoteError
from . import names
from ._git import GitError
from .store import GitStore

TIMEOUT = 300


def checked_url(url: str) -> str:
    url = names.repository_url(url)
    if "://" not in url and not names._SCP_LIKE.match(url):
        if not os.path.isdir(url):
            raise InvalidName(f"There is no repository at {names.describe(url)}: the folder does not exist.")
        url = os.path.abspath(url)
    elif url.lower().startswith("file://") and not os.path.isdir(url[7:]):
        raise InvalidName(f"There is no repository at {names.describe(url)}: the folder does not exist.")
    return url


def _network(store: GitStore, *args: str) -> str:
    try:
        return store.git.out(*args, network=True, timeout=TIMEOUT)
    except GitError as exc:
        raise RemoteError(f"The remote repository did not answer as expected: {_first_line(exc.stderr)}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RemoteError("The remote repository did not answer in time.") from exc


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("hint:")]
    fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:", "!"))]
    return (fatal or lines or ["no details"])[0].removeprefix("fatal: ").removeprefix("error: ")[:300]


def default_branch(store: GitStore, url: str) -> str:
    """The branch the remote's HEAD points at (e.g. main or master)."""
    url = checked_url(url)
    out = _network(store, "ls-remote", "--symref", "--", url, "HEAD")
    for line in out.splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            return line[5:].split("\t")[0].removeprefix("refs/heads/")
    heads = _network(store, "ls-remote", "--heads", "--", url)
    branches = [ln.split("\t")[1].removeprefix("refs/heads/") for ln in heads.splitlines() if "\t" in ln]
    for candidate in ("main", "master"):
        if candidate in branches:
            return candidate
    if len(branches) == 1:
        return branches[0]
    raise RemoteError("The remote repository has no main branch that dmaas could adopt.")


def fetch(store: GitStore, url: str, branch: str, into: str) -> str | None:
    """Fetch one branch of `url` into the internal ref `into` (refs/dmaas/...); its commit, or None if absent."""
    url = checked_url(url)
    if not into.startswith("refs/dmaas/"):
        raise InvalidName(f"{into!r} is not an internal ref")
    if not branch or branch.startswith("-") or ".." in branch or not branch.isascii():
        raise InvalidName(f"The branch name {names.describe(branch)} is refused.")
    if store.git.run("check-ref-format", f"refs/heads/{branch}", check=False).returncode != 0:
        raise InvalidName(f"The branch name {names.describe(branch)} is refused by git.")
    try:
        _network(store, "fetch", "--no-tags", "--no-write-fetch-head", "--quiet", "--", url,
                 f"+refs/heads/{branch}:{into}")
    except RemoteError as exc:
        if "couldn't find remote ref" in str(exc):
            return None
        raise
    return store.tip(into)


def push(store: GitStore, url: str, ref: str, *, force: bool = False) -> None:
    """Push one of our refs to the same name on the remote. Without force, only a fast-forward."""
    url = checked_url(url)
    names.checked_ref(ref)
    spec = f"{'+' if force else ''}{ref}:{ref}"
    _network(store, "push", "--quiet", "--porcelain", "--", url, spec)
