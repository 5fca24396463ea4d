"""What happens to change requests, for the layers above to act on (runner builds, merges, deploys).

models_service never imports runner; runner connects receivers in its AppConfig.ready(). Each signal
is sent after the database change it reports, with `change` (a fresh ChangeRequest); receivers that
queue work do so with transaction.on_commit.

- `change_saved`: new commits landed on the change's branch (`sha`: the new head).
- `change_moved`: the change's state moved (`old`, `new`), by a person, the policy or a merge.
"""

from __future__ import annotations

from django.dispatch import Signal

change_saved = Signal()
change_moved = Signal()
