"""The errors the data-models service raises, in plain words an analyst understands.

Plain Python (no Django), shared by the git store and the service functions. Views and API views map
them to status codes without reading the message: NotFound → 404, InvalidName / InvalidInput → 400,
Conflict (and MergeConflict) → 409, InvalidState → 409, Busy → 503, RemoteError → 502.
PermissionDenied (403) is Django's own, raised through models_service.access.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ServiceError(Exception):
    """Base class: `message` is the text to show; `code` a stable machine-readable tag for the API;
    `status` the HTTP status a view answers with; `field` the input at fault, when one is."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class NotFound(ServiceError):
    code = "not_found"
    status = 404


class InvalidInput(ServiceError):
    """A value the server will not accept (400): nothing was written."""

    code = "invalid"


class InvalidName(InvalidInput):
    """A model, file, branch or URL name the server refuses (400): nothing was written."""

    code = "invalid_name"


class InvalidState(ServiceError):
    """The change request is not in a state that allows this (409), e.g. saving to a merged change."""

    code = "invalid_state"
    status = 409


class Busy(ServiceError):
    """The repository stayed locked by other writers for too long (503); nothing was written."""

    code = "busy"
    status = 503


class RemoteError(ServiceError):
    """The remote repository could not be reached or refused an update (502)."""

    code = "remote_error"
    status = 502


@dataclass
class ModelVersion:
    """A model as stored at one commit: its SQL, its properties (yml entry) and where they live."""

    name: str
    commit: str  # the commit this version was read at
    sql: str
    spec: Any  # project_files.ModelSpec (description, columns, tests, config)
    sql_path: str
    yml_path: str | None = None
    sql_blob: str = ""
    yml_blob: str = ""  # blob of the yml file that holds the entry
    last_change: dict[str, Any] = field(default_factory=dict)  # who last changed it: sha, author, when, message

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: what a 409 or the editor's load returns."""
        return {
            "name": self.name, "commit": self.commit, "sql": self.sql,
            "properties": self.spec.to_yaml() if self.spec is not None else {"name": self.name},
            "sql_path": self.sql_path, "yml_path": self.yml_path, "last_change": self.last_change,
        }


class Conflict(ServiceError):
    """Someone else changed the same model since the version the analyst started from (409).

    Carries `current_sha` (the commit the change request is at now) and `current` (the model as it
    is there, or None when it was deleted), so the editor can show the other version.
    """

    code = "conflict"
    status = 409

    def __init__(self, message: str, *, current_sha: str = "", current: ModelVersion | None = None):
        super().__init__(message)
        self.current_sha = current_sha
        self.current = current

    def details(self) -> dict[str, Any]:
        return {"current_sha": self.current_sha, "current": self.current.as_dict() if self.current else None}


@dataclass
class ConflictDetail:
    """One conflicting part of a merge: which model, which part, which lines, what the other side did."""

    model: str  # model name, or the file path when the file is not a model's
    part: str  # "sql", "properties", "file"
    lines: list[tuple[int, int]] = field(default_factory=list)  # 1-based inclusive ranges in the change's version
    other: str = ""  # what the other side did, in plain words
    message: str = ""  # the whole sentence


class MergeConflict(Conflict):
    """A three-way merge stopped on models changed on both sides (409). `conflicts` lists them."""

    code = "merge_conflict"

    def __init__(self, message: str, *, conflicts: list[ConflictDetail], current_sha: str = ""):
        super().__init__(message, current_sha=current_sha)
        self.conflicts = conflicts

    def details(self) -> dict[str, Any]:
        return {"current_sha": self.current_sha, "conflicts": [c.__dict__ for c in self.conflicts]}
