"""A portal whose every user-controlled field holds an XSS payload (RELIABILITY B10), and the check
that a rendered page carries none of them live.

`build_world(users, warehouse)` writes the payloads through the services, as users would: a change's
title and description, a model's SQL text, description, column descriptions and tags (model names
are identifiers: refused, see test_xss.py), review comments, incident notes, schedule names, run and
node messages, saved chart titles, PII tags' notes, closing-day names, token names, a user's full
name, and a production table whose column names and cell values are payloads. It answers the
objects the access matrix's URL builders need (tests/access/test_matrix.py's Objects), so every
page route of the matrix can be rendered on this data.

`live_payloads(html)` parses a page with html.parser and lists what would run: a <script> that is
not one of ours (a src outside /static/, or inline code), any on* attribute (the templates have
none), a javascript: URL in href/src/action/formaction, or an <iframe srcdoc>/<object>/<embed>.
"""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from typing import Any

from django.utils import timezone

from models_service import changes, merging, review
from models_service import repo as repo_module
from models_service.models import ChangeRequest
from models_service.project_files import ColumnSpec, ModelSpec

MARK = "xss1337"
# One string carries every context's payload: text (<script>, <img onerror>, <svg onload>), attribute
# breakouts ("> and '>), a textarea breakout, a javascript: URL at the start (for any field that
# becomes a link) and template-ish braces (a client-side template would print 49).
PAYLOAD = (f"javascript:window.__xss=1//{MARK}<script>window.__xss=1</script>\"><img src=x "
           f"onerror=window.__xss=1>'><svg onload=window.__xss=1></textarea><b>{MARK}</b>{{{{7*7}}}}")
SHORT = f"<svg onload=window.__xss=1>\"'{MARK}"  # for fields of at most 100 characters
PAYLOADS = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "</textarea><script>alert(1)</script>",
    "{{7*7}}${7*7}",
    "<svg onload=alert(1)>",
    PAYLOAD,
]
MODEL = "xss_orders"
SQL = (f"-- {PAYLOAD}\nselect 1 as id, '{PAYLOAD.replace(chr(39), chr(39) * 2)}' as label\n"
       f"/* </textarea><script>window.__xss=1</script> */\n")
# Column names of the production table: quoted identifiers may hold anything.
TABLE_COLUMNS = ['<img src=x onerror=window.__xss=1>', f'"><svg onload=window.__xss=1>{MARK}', "id"]


def seed_warehouse(w: Any) -> None:
    cols = ", ".join('"' + c.replace('"', '""') + '" varchar' for c in TABLE_COLUMNS)
    values = ", ".join("'" + p.replace("'", "''") + "'" for p in (PAYLOAD, PAYLOADS[1], "1"))
    w.run("create schema if not exists analytics", f"drop table if exists analytics.{MODEL}",
          f"create table analytics.{MODEL} ({cols})", f"insert into analytics.{MODEL} values ({values})")


def build_world(users: dict[str, Any], warehouse: Any = None) -> dict[str, Any]:
    from portal import tokens
    from runner import incidents
    from runner.models import Chart, ClosingDay, NodeRun, PiiTag, Run, Schedule

    analyst, reviewer, admin = users["analyst"], users["reviewer"], users["admin"]
    analyst.first_name, analyst.last_name = SHORT[:30], PAYLOAD[:150]
    analyst.save(update_fields=["first_name", "last_name"])
    spec = ModelSpec(MODEL, description=PAYLOAD,
                     columns=[ColumnSpec("id", description=PAYLOAD), ColumnSpec("label", description=SHORT)],
                     config={"tags": [SHORT]})
    # main: the model, merged through a reviewed change whose title and description are payloads
    live = changes.open_change(analyst, PAYLOAD[:190], PAYLOAD)
    changes.save_model(analyst, live, MODEL, SQL, spec)
    changes.submit_change(analyst, live)
    head = repo_module.get_store().tip(live.branch)
    ChangeRequest.objects.filter(pk=live.pk).update(state="approved", approved_sha=head)
    review.add_comment(reviewer, live, PAYLOAD)
    merging.merge_change(reviewer, live)
    version = repo_module.get_store().tip("refs/heads/main")
    # a draft that edits it, and a submitted change with comments on a line
    draft = changes.open_change(analyst, SHORT + " draft", PAYLOAD)
    changes.save_model(analyst, draft, MODEL, SQL + f"-- {PAYLOAD}\n", spec)
    submitted = changes.open_change(analyst, SHORT + " submitted", PAYLOAD)
    changes.save_model(analyst, submitted, "xss_customers", SQL, ModelSpec("xss_customers", description=PAYLOAD))
    submitted = changes.submit_change(analyst, submitted)
    review.add_comment(reviewer, submitted, PAYLOAD)
    review.add_comment(reviewer, submitted, PAYLOAD, model="xss_customers", line=1)
    # runs, incidents, schedules, charts, PII, SLA closing days, tokens
    schedule = Schedule.objects.create(name=SHORT, select=MODEL, cron="0 * * * *")
    run = Run.objects.create(target="analytics", status="failed", message=PAYLOAD, schedule=schedule)
    NodeRun.objects.create(run=run, unique_id=f"model.dmaas.{MODEL}", name=MODEL, resource_type="model",
                           status="error", attempts=1, message=PAYLOAD)
    incident = incidents.report(MODEL, "model_failed", PAYLOAD, run=run)
    incidents.acknowledge(admin, incident.pk, note=PAYLOAD)
    Chart.objects.create(model=MODEL, title=PAYLOAD[:200], kind="bar", x="id", aggregate="count", owner=admin)
    pii_tag = PiiTag.objects.create(model=MODEL, column="label", category="email", confidence=0.9,
                                    evidence={"name": {"rule": PAYLOAD, "category": "email"},
                                              "values": {"matched": {SHORT: 1}, "sampled": 1}},
                                    note=PAYLOAD, detected_at=timezone.now())
    closing_day = ClosingDay.objects.create(date=dt.date(2027, 12, 30), name=SHORT)
    token = tokens.create_token(analyst, analyst, name=PAYLOAD[:100], source="api").token
    tokens.create_token(admin, admin, name=PAYLOAD[:100], source="api")
    if warehouse is not None:
        seed_warehouse(warehouse)
    return {"change": draft, "model": MODEL, "version": version, "submitted": submitted, "run": run,
            "incident": incident, "schedule": schedule, "pii_tag": pii_tag, "closing_day": closing_day,
            "token": token, "merged": live}


class _Finder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._script: tuple[str, dict[str, str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        for name, value in values.items():
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}={value[:60]!r}>")
            if name in ("href", "src", "action", "formaction", "xlink:href", "data") and \
                    "".join(value.split()).lower().startswith(("javascript:", "vbscript:", "data:text/html")):
                self.found.append(f"<{tag} {name}={value[:60]!r}>")
        if tag in ("iframe", "object", "embed", "base") or (tag == "meta" and "refresh" in str(values)):
            self.found.append(f"<{tag}> element")
        if tag == "script":
            self._script = (tag, values)
            src = values.get("src")
            if src is not None and not src.startswith("/static/"):
                self.found.append(f"<script src={src[:60]!r}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is None:
            return
        _, values = self._script
        kind = values.get("type", "").lower()
        if kind == "application/json":  # json_script: data, never run; it must not hold a raw '<'
            if "<" in data:
                self.found.append(f"raw '<' inside a JSON script block: {data[:60]!r}")
        elif data.strip() and "src" not in values:
            self.found.append(f"inline <script>: {data[:60]!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def live_payloads(html: str) -> list[str]:
    finder = _Finder()
    finder.feed(html)
    finder.close()
    found = finder.found
    if f"{MARK}49" in html.replace("</b>", ""):  # {{7*7}} evaluated by a template engine
        found.append("{{7*7}} was evaluated")
    return found
