from django.apps import AppConfig
from django.db.models.signals import post_save


class LookoutXeroConfig(AppConfig):
    name = "lookout_xero"
    verbose_name = "Xero sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, conf, receivers, signals  # noqa: F401 - checks register

        post_save.connect(
            receivers.funder_saved,
            sender=conf.funder_model_label(),
            dispatch_uid="lookout_xero.funder_saved",
        )
        signals.connection_changed.connect(
            receivers.connection_changed,
            sender=self.get_model("XeroConnection"),
            dispatch_uid="lookout_xero.connection_changed",
        )
