from django.apps import AppConfig


class RunnerConfig(AppConfig):
    name = "runner"
    verbose_name = "Runs"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from models_service import signals

        from . import receivers

        post_migrate.connect(_default_schedule, sender=self, dispatch_uid="runner.default_schedule")
        signals.change_saved.connect(receivers.on_saved, dispatch_uid="runner.on_saved")
        signals.change_moved.connect(receivers.on_moved, dispatch_uid="runner.on_moved")
        from .observe import signals as observe_signals
        from .observe import tasks as observe_tasks  # also registers its Celery tasks

        observe_signals.measured.connect(observe_tasks.on_measured, dispatch_uid="runner.observe.pii_scan")


def _default_schedule(sender, **kwargs) -> None:
    """The hourly production run exists from the first start (post_migrate, also after a test flush)."""
    from .runs import ensure_default_schedule

    ensure_default_schedule()
