from django.apps import AppConfig


class PortalConfig(AppConfig):
    # The web face: pages, the REST API, API tokens, the login guard, management commands.
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from portal import login_guard

        user_logged_in.connect(login_guard.forget_attempts, dispatch_uid="portal.login_guard.forget_attempts")
