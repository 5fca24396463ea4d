from django.apps import AppConfig


class PortalConfig(AppConfig):
    # An app so that Django finds its management commands (dmaas_demo).
    name = "portal"
    verbose_name = "Portal"
