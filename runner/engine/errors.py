"""Errors the engine reports to people: each names the file, the line where known, and what to do."""

from __future__ import annotations

from models_service.project_files import ProjectFileError

# The project cannot be compiled (unknown ref, cycle, bad yml, Jinja or SQL error, ...): one class for
# the file formats and the engine, so callers catch one thing.
ProjectError = ProjectFileError


class UsageError(ValueError):
    """The command line or the warehouse URL is wrong."""
