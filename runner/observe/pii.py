"""Personal data in columns: masking of confirmed PII for people without the `pii.view` permission.

`mask_result(user, model, result, where=...)` is the one gate every read of a model's values passes
through (previews, the catalog's sample, explore, chart data): confirmed-PII columns come back masked
for people without `pii.view`; for people with it, the unmasked read is written to the audit log.
"""

from __future__ import annotations

from typing import Any

from models_service import access, audit

MASK = "•••"


def confirmed_columns(model: str) -> set[str]:
    from runner.models import PiiStatus, PiiTag

    return {c.lower() for c in PiiTag.objects.filter(model=model, status=PiiStatus.CONFIRMED)
            .values_list("column", flat=True)}


def mask_result(user: Any, model: str | None, result: Any, *, where: str, source: str = "page") -> Any:
    """`result` is a runner.warehouse.QueryResult (columns: [{"name", "type"}], rows: lists); masked in
    place and returned. `where` names the reader for the audit log (preview, catalog, explore, chart)."""
    if not model:
        return result
    pii = confirmed_columns(model)
    hit = [i for i, col in enumerate(result.columns) if str(col.get("name", "")).lower() in pii]
    if not hit:
        return result
    if access.can(user, "pii.view"):
        audit.record(user, "pii.view", None, source=source, object_type="model", object_id=model,
                     object_repr=model, details={"where": where,
                                                 "columns": [result.columns[i]["name"] for i in hit]})
        return result
    for row in result.rows:
        for i in hit:
            if row[i] is not None:
                row[i] = MASK
    for i in hit:
        result.columns[i] = {**result.columns[i], "masked": True}
    return result
