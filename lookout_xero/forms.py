"""Admin forms. The Client Secret is write-only: never rendered, blank keeps the stored one."""

from __future__ import annotations

from django import forms
from django.utils import formats, timezone

from . import conf, wording
from .models import XeroConnection

ENABLED_HELP = (
    "Enabling runs a full sync of all unarchived membership funders of this organisation, then "
    "keeps every change in step. Disabling stops all calls to Xero for this organisation at once."
)


class XeroConnectionForm(forms.ModelForm):
    client_secret = forms.CharField(
        label="Client Secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "size": 40}
        ),
        help_text="Write-only: it is never shown again once saved.",
    )
    webhook_key = forms.CharField(
        label="Webhook key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password", "size": 40}
        ),
        help_text="Optional. Write-only: leave blank to keep the stored one.",
    )

    class Meta:
        model = XeroConnection
        fields = ["organisation", "client_id", "client_secret", "scope", "enabled", "webhook_key"]
        widgets = {
            "client_id": forms.TextInput(attrs={"autocomplete": "off", "size": 40}),
            "scope": forms.TextInput(attrs={"size": 40}),
        }
        help_texts = {
            "client_id": "From the customer's Xero developer portal (My Apps, then their custom "
            "connection).",
            "enabled": ENABLED_HELP,
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Declared fields are always added by the metaclass; keep only those the admin asked
        # for, so a user without the credentials permission gets no secret field at all.
        for name in list(self.fields):
            if name not in self._meta.fields:
                del self.fields[name]
        # Which write-only values there were before this save, for the admin history: typing
        # one "Replaced" it, or "Set" it (`audit.connection_saved` reads this off the instance).
        self.instance.lx_had_values = frozenset(
            name for name in ("client_secret", "webhook_key") if getattr(self.instance, name)
        )
        # The bound instance holds the decrypted secret; make sure nothing ever echoes it.
        self.initial.pop("client_secret", None)
        self.initial.pop("webhook_key", None)
        if "scope" in self.fields:
            self.fields["scope"].help_text = wording.SCOPE_HELP
        if "scope" in self.fields and not self.instance.pk:
            self.initial["scope"] = conf.get("DEFAULT_SCOPE")
        secret = self.fields.get("client_secret")
        if secret is not None and self.instance.pk and self.instance.client_secret_set_at:
            set_on = formats.date_format(
                timezone.localtime(self.instance.client_secret_set_at), "j M Y, H:i T"
            )
            secret.help_text = (
                f"Set on {set_on}. Write-only: leave blank to keep it; type a new one to "
                "replace it."
            )
            secret.widget.attrs["placeholder"] = f"set on {set_on}"

    def clean_client_secret(self) -> str:
        secret = self.cleaned_data.get("client_secret", "")
        if secret:
            return secret
        if self.instance.pk and self.instance.client_secret:
            return self.instance.client_secret
        raise forms.ValidationError(
            "Paste the Client Secret from the customer's Xero custom connection."
        )

    def clean_webhook_key(self) -> str:
        # Blank keeps the stored key, as for the secret (there is no "clear" for now).
        key = self.cleaned_data.get("webhook_key", "")
        return key or (self.instance.webhook_key if self.instance.pk else "")

    def clean_client_id(self) -> str:
        return self.cleaned_data["client_id"].strip()

    def clean_scope(self) -> str:
        return " ".join(self.cleaned_data.get("scope", "").split())
