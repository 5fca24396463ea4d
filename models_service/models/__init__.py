"""The tables of models_service. One module per family; each is imported here so Django finds it."""

from .audit import AuditEntry
from .changes import ChangeRequest, ChangeState
from .index import IndexedColumn, IndexedNode, IndexedRef, IndexedTag, NodeKind
from .reviews import Comment, Review, Verdict
from .sync import PushOutbox, RemoteSync

__all__ = ["AuditEntry"]
__all__ += ["ChangeRequest", "ChangeState"]
__all__ += ["IndexedColumn", "IndexedNode", "IndexedRef", "IndexedTag", "NodeKind"]
__all__ += ["PushOutbox", "RemoteSync"]
__all__ += ["Comment", "Review", "Verdict"]
