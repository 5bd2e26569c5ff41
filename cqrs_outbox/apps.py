from django.apps import AppConfig


class CQRSOutboxConfig(AppConfig):
    name = "cqrs_outbox"
    verbose_name = "CQRS outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cqrs_outbox import checks  # noqa: F401  (registers the system checks)
