from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate, post_save, pre_migrate


class LookoutXeroConfig(AppConfig):
    name = "lookout_xero"
    verbose_name = "Xero sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, conf, receivers, services, signals  # noqa: F401 - checks register

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
        # PostgreSQL: the trigger that queues a save in its own statement, and its notices.
        pre_migrate.connect(
            services.remove_trigger_before_migrate, sender=self, dispatch_uid="lookout_xero.trigger"
        )
        post_migrate.connect(
            services.install_trigger_on_migrate, sender=self, dispatch_uid="lookout_xero.trigger"
        )
        connection_created.connect(
            services.listen_to_trigger, dispatch_uid="lookout_xero.trigger_notices"
        )
