"""Forms that parse what people type; the API reuses them so pages and API read input alike."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.utils import timezone

from models_service.models.audit import AuditSource
from models_service.project_files import ColumnSpec, ModelSpec, TestSpec


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


# --------------------------------------------------------------------------- change requests and models

SHA = RegexValidator(r"^[0-9a-f]{40}$", "This page is out of date: reload it and try again.")
SIMPLE_TESTS = ("unique", "not_null")  # the column tests the form has a checkbox for


class ChangeForm(forms.Form):
    """A new change request: what it is for, in the analyst's words."""

    title = forms.CharField(
        max_length=200, help_text="What the change does, e.g. “Add monthly revenue”.", strip=True
    )
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: why, and anything a reviewer should know.",
    )


class ModelEditForm(forms.Form):
    """A model's SQL and description, the message of the save, and the version it was loaded from."""

    sql = forms.CharField(
        label="SQL",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    message = forms.CharField(
        label="What you changed",
        required=False,
        max_length=2000,
        help_text="Optional: a short note shown in the list of saves.",
    )
    base_sha = forms.CharField(widget=forms.HiddenInput, validators=[SHA])


class NewModelForm(ModelEditForm):
    name = forms.CharField(
        max_length=200,
        help_text="Letters, digits and underscores, starting with a letter: e.g. monthly_revenue.",
        validators=[
            RegexValidator(
                r"^[A-Za-z_][A-Za-z0-9_]*$",
                "Use letters, digits and underscores only, starting with a letter or underscore.",
            )
        ],
    )
    folder = forms.CharField(
        required=False,
        max_length=200,
        help_text="Optional: a folder under models/, e.g. marts/finance.",
        validators=[RegexValidator(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$", "Folders are names joined by /.")],
    )

    field_order = ["name", "folder", "sql", "description", "message", "base_sha"]


class ColumnForm(forms.Form):
    name = forms.CharField(required=False, max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 1}))
    unique = forms.BooleanField(required=False)
    not_null = forms.BooleanField(required=False, label="Not null")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("name") and (data.get("description") or data.get("unique") or data.get("not_null")):
            self.add_error("name", "Give the column a name, or clear its row.")
        return data


ColumnFormSet = forms.formset_factory(ColumnForm, extra=2, can_delete=True, max_num=500, validate_max=True)


def column_initial(spec: ModelSpec | None) -> list[dict[str, Any]]:
    """The columns table's rows for a model's properties (a project_files.ModelSpec, or None)."""
    rows = []
    for col in getattr(spec, "columns", None) or []:
        kinds = {t.kind for t in col.tests if _plain(t)}
        rows.append(
            {
                "name": col.name,
                "description": col.description,
                "unique": "unique" in kinds,
                "not_null": "not_null" in kinds,
            }
        )
    return rows


def other_tests(spec: ModelSpec | None) -> dict[str, list[str]]:
    """Column name -> the tests the form has no checkbox for (kept as they are on save)."""
    return {
        col.name: [t.kind for t in col.tests if not _plain(t)] for col in getattr(spec, "columns", None) or []
    }


def _plain(test: TestSpec) -> bool:
    """A test the form's checkboxes stand for: unique or not_null without arguments or config."""
    return test.kind in SIMPLE_TESTS and not test.kwargs and not test.config


def model_spec(name: str, form: ModelEditForm, columns: Any, base: ModelSpec | None = None) -> ModelSpec:
    """A ModelSpec from the form, keeping what the form does not show from `base` (the loaded version's
    properties): the model's own tests and each column's other tests (accepted_values, relationships...)."""
    before = {c.name: c for c in getattr(base, "columns", None) or []}
    cols = []
    for row in columns:
        data = row.cleaned_data
        if not data or not data.get("name") or data.get("DELETE"):
            continue
        prev = before.get(data["name"])
        kept = [t for t in prev.tests if not _plain(t)] if prev else []
        tests = [TestSpec(kind) for kind in SIMPLE_TESTS if data.get(kind)]
        cols.append(ColumnSpec(name=data["name"], description=_lf(data.get("description") or ""), tests=tests + kept))
    return ModelSpec(
        name=name,
        description=_lf(form.cleaned_data.get("description") or ""),
        columns=cols,
        tests=list(getattr(base, "tests", None) or []),
    )


def _lf(text: str) -> str:
    """Browsers send a textarea's line breaks as CRLF; the yml keeps plain newlines."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class RevertForm(forms.Form):
    sha = forms.CharField(validators=[SHA])
