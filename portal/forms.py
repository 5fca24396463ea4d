"""Forms that parse what people type; the API reuses them so pages and API read input alike."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.utils import timezone

from models_service.models.audit import AuditSource


class TokenForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        required=False,
        help_text="What the token is for, e.g. “nightly export”.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Built here, not in the class body: the limits are settings that tests change.
        most, default = settings.DMAAS_API_TOKEN_MAX_DAYS, settings.DMAAS_API_TOKEN_DAYS
        self.fields["days"] = forms.IntegerField(
            label="Valid for (days)",
            min_value=1,
            max_value=most,
            required=False,
            initial=default,
            help_text=f"1 to {most}; {default} if left empty.",
        )


class AuditFilterForm(forms.Form):
    action = forms.CharField(
        required=False, max_length=64, help_text="e.g. role.change, or token. for every token action"
    )
    actor = forms.CharField(required=False, max_length=150, label="Who (username)")
    source = forms.ChoiceField(required=False, choices=[("", "any")] + list(AuditSource.choices))
    object_type = forms.CharField(required=False, max_length=64, label="Object type")
    object_id = forms.CharField(required=False, max_length=128, label="Object id")
    sha = forms.CharField(
        required=False,
        max_length=64,
        label="Commit",
        validators=[
            RegexValidator(r"^[0-9a-fA-F]{4,64}$", "A commit sha (or its first 4 or more characters).")
        ],
    )
    since = forms.DateField(
        required=False, label="From (date)", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(required=False, label="To (date)", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data

    def filters(self) -> dict[str, Any]:
        """Keyword arguments for models_service.audit.entries; dates become days in the local zone."""
        data = self.cleaned_data
        found = {
            name: data[name] for name in ("action", "actor", "source", "object_type", "object_id", "sha")
        }
        zone = timezone.get_current_timezone()
        if data.get("since"):
            found["since"] = datetime.combine(data["since"], time.min, tzinfo=zone)
        if data.get("until"):  # the whole of the last day
            found["until"] = datetime.combine(data["until"] + timedelta(days=1), time.min, tzinfo=zone)
        return found
