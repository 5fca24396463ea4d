"""Adopt an existing dbt project repository (its history kept) as the portal's data-models repository."""

from django.core.management.base import BaseCommand, CommandError

from models_service import sync
from models_service.errors import ServiceError


class Command(BaseCommand):
    help = ("Import a dbt project repository: PATH_OR_URL is a local path, file://, ssh:// (or user@host:path) "
            "or https:// URL. Its default branch becomes main, with its history.")

    def add_arguments(self, parser):
        parser.add_argument("source", metavar="PATH_OR_URL")
        parser.add_argument("--branch", help="the branch to adopt (default: the repository's default branch)")
        parser.add_argument("--replace", action="store_true",
                            help="replace a main that already has its own history (the old one is kept under "
                                 "refs/dmaas/replaced/)")

    def handle(self, *args, source: str, branch: str | None = None, replace: bool = False, **options):
        try:
            report = sync.import_repository(source, branch=branch, replace=replace)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        counts = ", ".join(f"{n} {kind}s" for kind, n in sorted(report.index["main"].items())) or "no models"
        self.stdout.write(f"{report.outcome}: {report.url} ({report.branch}) is main at {report.sha[:12]}, "
                          f"{report.commits} commit(s); indexed {counts}.")
