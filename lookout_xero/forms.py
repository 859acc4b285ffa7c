"""Admin forms. The Client Secret is write-only: never rendered, blank keeps the stored one."""

from __future__ import annotations

from django import forms

from .models import XeroConnection


class XeroConnectionForm(forms.ModelForm):
    client_secret = forms.CharField(
        label="Client Secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the stored secret; type a new one to "
        "replace it.",
    )

    class Meta:
        model = XeroConnection
        fields = ["organisation", "client_id", "client_secret", "scope", "enabled"]
        widgets = {"client_id": forms.TextInput(attrs={"autocomplete": "off", "size": 40})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The bound instance holds the decrypted secret; make sure nothing ever echoes it.
        self.initial.pop("client_secret", None)
        if self.instance.pk and self.instance.client_secret_set_at:
            self.fields["client_secret"].help_text = (
                f"Set on {self.instance.client_secret_set_at:%d %b %Y %H:%M} UTC. "
                "Leave blank to keep it; type a new one to replace it."
            )

    def clean_client_secret(self) -> str:
        secret = self.cleaned_data.get("client_secret", "")
        if secret:
            return secret
        if self.instance.pk and self.instance.client_secret:
            return self.instance.client_secret
        raise forms.ValidationError(
            "Paste the Client Secret from the customer's Xero custom connection."
        )

    def clean_client_id(self) -> str:
        return self.cleaned_data["client_id"].strip()
