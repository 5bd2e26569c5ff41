from django.apps import AppConfig


class CQRSOutboxConfig(AppConfig):
    name = "cqrs_outbox"
    verbose_name = "CQRS outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks; refuse to start on a configuration that cannot work."""
        from cqrs_outbox import checks

        checks.raise_if_unusable()
