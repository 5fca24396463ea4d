"""Run the remote sync once (what the periodic task does): push pending refs, fetch main, re-index."""

from django.core.management.base import BaseCommand, CommandError

from models_service import sync
from models_service.errors import ServiceError


class Command(BaseCommand):
    help = "Push pending refs to DMAAS_REPO_REMOTE and bring engineers' commits on its main into the portal."

    def handle(self, *args, **options):
        try:
            report = sync.sync_remote()
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{report.outcome}; main {report.main_before[:12] or '-'} -> {report.main_after[:12] or '-'}; "
                          f"pushed {report.pushed}")
