"""`manage.py dmaas_scan_pii [model ...]`: scan production models for personal data, now, in this process.

Without names every model on main is scanned (ephemeral ones have no relation and are skipped). The
scan never overrides a legal decision (runner.observe.pii); each one is written to the audit log as
`pii.scan` from the command line. Exits 1 when a model cannot be scanned, after trying the others.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from models_service.errors import NotFound
from runner import warehouse as wh
from runner.observe import pii


def main_models() -> list[str]:
    from runner import preview
    from runner.engine.project import MappingSource, load_project

    try:
        at = preview.project_at(None)
    except preview.PreviewFailed as err:
        raise CommandError(err.message) from None
    project = load_project(MappingSource(dict(at.files)))
    return sorted(n.name for n in project.nodes.values() if n.resource_type == "model")


class Command(BaseCommand):
    help = "Scan production models for PII (all models on main, or the ones named)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("models", nargs="*", help="model names (default: every model on main)")

    def handle(self, *args: Any, models: list[str], **options: Any) -> None:
        failed = 0
        for name in models or main_models():
            try:
                result = pii.scan_model(name, source="cli")
            except (NotFound, wh.PreviewError) as err:
                failed += 1
                self.stderr.write(f"{name}: {getattr(err, 'message', err)}")
                continue
            if result.skipped:
                self.stdout.write(f"{name}: skipped ({result.skipped})")
                continue
            self.stdout.write(f"{name}: {result.columns} columns; {len(result.created)} new, "
                              f"{len(result.updated)} updated, {len(result.reopened)} reopened, "
                              f"{len(result.removed)} removed")
        if failed:
            raise CommandError(f"{failed} model(s) could not be scanned.")
