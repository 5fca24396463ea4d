"""Scanning built relations for PII (DuckDB and the real PostgreSQL), rescans that keep people's
decisions, the build receiver that queues scans, the task and the management command."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from models_service.audit import entries
from runner.models import PiiStatus, PiiTag
from runner.observe import pii, signals, tasks
from tests.runner.conftest import commit_to_main

pytestmark = pytest.mark.django_db

ROWS = 30
MAIN = {"models/customers.sql": "select 1 as customer_id\n", "models/orders.sql": "select 1 as order_id\n",
        "models/scratch.sql": "{{ config(materialized='ephemeral') }}select 1 as id\n"}


def _values(rows: list[tuple]) -> str:
    def lit(v):
        return "null" if v is None else ("'" + str(v).replace("'", "''") + "'" if isinstance(v, str) else str(v))

    return ", ".join("(" + ", ".join(lit(v) for v in row) + ")" for row in rows)


def build_customers(w, *, phone=lambda i: f"+44 20 7946 {i:04d}", notes=lambda i: "likes tea" if i % 3 else None,
                    with_name=True) -> None:
    """analytics.customers as a production build leaves it."""
    cols = "customer_id integer, email varchar, phone varchar, notes varchar, signed_up date" + \
        (", full_name varchar" if with_name else "")
    rows = [(i, f"user{i}@example.com", phone(i), notes(i), f"2024-01-{1 + i % 28:02d}")
            + ((f"Ada Lovelace {i}",) if with_name else ()) for i in range(ROWS)]
    w.run("create schema if not exists analytics", "drop table if exists analytics.customers",
          f"create table analytics.customers ({cols})", f"insert into analytics.customers values {_values(rows)}")


def tags() -> dict[str, PiiTag]:
    return {t.column: t for t in PiiTag.objects.filter(model="customers")}


def test_a_scan_finds_the_pii_columns_of_a_built_relation(warehouse):
    commit_to_main(MAIN)
    build_customers(warehouse)
    result = pii.scan_model("customers")
    found = tags()
    assert set(found) == {"email", "phone", "full_name"}
    assert (found["email"].category, found["phone"].category, found["full_name"].category) == ("email", "phone", "name")
    assert all(t.status == PiiStatus.SUGGESTED for t in found.values())
    assert found["email"].confidence > 0.95
    assert found["email"].evidence["values"] == {"sampled": ROWS, "matched": {"email": ROWS}}
    assert "example.com" not in repr([t.evidence for t in found.values()])
    assert sorted(result.created) == ["email", "full_name", "phone"] and result.columns == 6
    scan = entries(action="pii.scan", object_id="customers").get()
    assert scan.details["signature"] == pii.signature(["customer_id", "email", "phone", "notes", "signed_up",
                                                       "full_name"])


def test_a_rescan_keeps_decisions_and_updates_only_their_evidence(duck, legal):
    commit_to_main(MAIN)
    build_customers(duck)
    pii.scan_model("customers")
    found = tags()
    pii.decide_tag(legal, found["email"].pk, PiiStatus.CONFIRMED, source="page")
    pii.decide_tag(legal, found["phone"].pk, PiiStatus.REJECTED, "Switchboard numbers of companies.", source="page")
    build_customers(duck, phone=lambda i: f"+33 6 12 34 56 {i:02d}")  # other phones: still phones
    pii.scan_model("customers")
    again = tags()
    assert again["email"].status == PiiStatus.CONFIRMED and again["email"].decided_by == legal
    assert again["email"].detected_at > found["email"].detected_at
    assert again["phone"].status == PiiStatus.REJECTED
    assert again["phone"].note == "Switchboard numbers of companies."


def test_a_rejected_tag_reopens_when_its_values_turn_into_another_kind_of_pii(duck, legal):
    commit_to_main(MAIN)
    build_customers(duck)
    pii.scan_model("customers")
    phone = tags()["phone"]
    pii.decide_tag(legal, phone.pk, PiiStatus.REJECTED, "Company numbers.", source="page")
    build_customers(duck, phone=lambda i: "DE89 3704 0044 0532 0130 00")
    result = pii.scan_model("customers")
    phone.refresh_from_db()
    assert result.reopened == ["phone"]
    assert (phone.status, phone.category, phone.decided_by) == (PiiStatus.SUGGESTED, "iban", None)
    assert "Rejected as phone by lena" in phone.note and "Company numbers." in phone.note


def test_suggestions_without_support_go_and_decided_tags_of_gone_columns_stay(duck, legal):
    commit_to_main(MAIN)
    build_customers(duck, notes=lambda i: f"n{i}@example.com")
    pii.scan_model("customers")
    assert tags()["notes"].category == "email"  # found by its values alone
    pii.decide_tag(legal, tags()["full_name"].pk, PiiStatus.CONFIRMED, source="page")
    build_customers(duck, phone=lambda i: "call the front desk", with_name=False)
    result = pii.scan_model("customers")
    after = tags()
    assert "notes" not in after and result.removed == ["notes"]
    assert after["full_name"].status == PiiStatus.CONFIRMED and after["full_name"].evidence["gone"] is True
    # a strong name with values unlike it stays suggested, with less confidence, and says why
    assert after["phone"].evidence["values"]["unlike_name"] is True and after["phone"].confidence < 0.6


def test_an_ephemeral_model_has_nothing_to_scan_and_an_unknown_one_is_not_found(duck):
    commit_to_main(MAIN)
    assert pii.scan_model("scratch").skipped
    assert tasks.scan_pii("no_such_model").startswith("skipped: There is no model no_such_model")


def _measurement(model: str, columns: list[str], kind: str = "production"):
    return SimpleNamespace(model=model, kind=kind, columns=[{"name": c, "type": "VARCHAR"} for c in columns])


def test_a_build_queues_a_scan_when_never_scanned_or_its_columns_changed(duck, monkeypatch,
                                                                       django_capture_on_commit_callbacks):
    commit_to_main(MAIN)
    build_customers(duck)
    queued: list[str] = []
    monkeypatch.setattr(tasks.scan_pii, "delay", lambda model, *a: queued.append(model))
    columns = ["customer_id", "email", "phone", "notes", "signed_up", "full_name"]
    with django_capture_on_commit_callbacks(execute=True):
        signals.measured.send(sender=None, measurement=_measurement("customers", columns))
    assert queued == ["customers"]
    assert tasks.scan_pii("customers").startswith("3 new")  # what the worker does with it
    with django_capture_on_commit_callbacks(execute=True):
        signals.measured.send(sender=None, measurement=_measurement("customers", list(reversed(columns))))
        signals.measured.send(sender=None, measurement=_measurement("customers", [*columns, "x"], kind="ci"))
    assert queued == ["customers"]  # same columns (in any order): no scan; a CI build: none either
    with django_capture_on_commit_callbacks(execute=True):
        signals.measured.send(sender=None, measurement=_measurement("customers", [*columns, "iban"]))
    assert queued == ["customers", "customers"]


def test_the_management_command_scans_named_models_or_all_of_main(duck):
    commit_to_main(MAIN)
    build_customers(duck)
    duck.run("create table analytics.orders (order_id integer, sku varchar)",
             "insert into analytics.orders values (1, 'SKU-1'), (2, 'SKU-2')")
    out = io.StringIO()
    call_command("dmaas_scan_pii", "customers", stdout=out)
    assert "customers: 6 columns; 3 new" in out.getvalue()
    out = io.StringIO()
    call_command("dmaas_scan_pii", stdout=out)
    text = out.getvalue()
    assert "customers: 6 columns; 0 new, 3 updated" in text and "orders: 2 columns; 0 new" in text
    assert "scratch: skipped" in text
    with pytest.raises(CommandError):
        call_command("dmaas_scan_pii", "nope", stdout=io.StringIO(), stderr=io.StringIO())
