"""The data-models repository of this installation (settings.DMAAS_REPO) and who commits to it."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings

from .git_store import GitStore, Identity
from .project_files import project_skeleton

PROJECT_NAME = "data_models"
PORTAL = Identity("dmaas portal", "portal@dmaas.invalid")  # the committer of every portal commit
FIRST_MESSAGE = "Start the data-models project"

_stores: dict[str, GitStore] = {}
_lock = threading.Lock()


def get_store(create: bool = True) -> GitStore:
    """The store at settings.DMAAS_REPO, created on first use with the project skeleton on main."""
    path = str(settings.DMAAS_REPO)
    with _lock:
        store = _stores.get(path)
        if store is None:
            store = GitStore(path, committer=PORTAL)
            if create:
                store.create_with(project_skeleton(PROJECT_NAME), FIRST_MESSAGE, author=PORTAL)
            _stores[path] = store
    return store


def forget_stores() -> None:
    """Drop cached stores (tests switch DMAAS_REPO between repositories) and their git processes."""
    with _lock:
        for store in _stores.values():
            store.close()
        _stores.clear()


def identity(user: Any) -> Identity:
    """The commit author for a user: full name (or user name) and e-mail."""
    if user is None or not getattr(user, "is_authenticated", False):
        return PORTAL
    name = (user.get_full_name() or "").strip() or user.get_username()
    email = (user.email or "").strip() or f"{user.get_username()}@users.dmaas.invalid"
    return Identity(name, email).clean()
