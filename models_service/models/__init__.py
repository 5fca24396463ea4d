"""The tables of models_service. One module per family; each is imported here so Django finds it."""

from .audit import AuditEntry

__all__ = ["AuditEntry"]
