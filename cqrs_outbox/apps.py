from django.apps import AppConfig


class CQRSOutboxConfig(AppConfig):
    name = "cqrs_outbox"
    verbose_name = "CQRS outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks; refuse to start on a configuration that cannot work."""
        from django.db.models.signals import post_migrate

        from cqrs_outbox import checks
        from cqrs_outbox.master import triggers

        checks.raise_if_unusable()
        # The capture triggers follow CQRS['master']['capture'] after every migrate.
        post_migrate.connect(triggers.sync, sender=self,
                             dispatch_uid="cqrs_outbox_capture_triggers")
