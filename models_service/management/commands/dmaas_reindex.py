"""Rebuild the repository index (models, columns, tags, owners, blob ids) from git."""

from django.core.management.base import BaseCommand

from models_service import index
from models_service.git_store import MAIN_REF
from models_service.repo import get_store


class Command(BaseCommand):
    help = "Rebuild the database index of the data-models repository from git (main and open changes)."

    def handle(self, *args, **options):
        store = get_store()
        with store.locked(MAIN_REF):  # a merge meanwhile would otherwise race the rebuild
            result = index.rebuild_all(store)
        counts = ", ".join(f"{n} {kind}s" for kind, n in sorted(result["main"].items())) or "nothing"
        self.stdout.write(f"Indexed main: {counts}; {result['changes']} open change(s).")
