from django.apps import AppConfig


class RunnerConfig(AppConfig):
    name = "runner"
    verbose_name = "Runs"

    def ready(self) -> None:
        from models_service import signals

        from . import receivers

        signals.change_saved.connect(receivers.on_saved, dispatch_uid="runner.on_saved")
        signals.change_moved.connect(receivers.on_moved, dispatch_uid="runner.on_moved")
