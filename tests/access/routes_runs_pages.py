"""Access policy of the run monitoring and incident pages (issue 7): entries as in tests/access/routes.py.

Every role reads runs, what runs next and the schedules (run.view); only platform admins start, retry
or cancel runs (run.trigger) and create or edit schedules (schedule.manage). Analysts, reviewers and
admins read incidents (incident.view); only admins act on them (incident.manage). The objects are
objs["run"] (a finished run: retry and cancel are refused with a message), objs["schedule"] (the
hourly schedule every install has) and objs["incident"] (an open one). Every form answers with a
redirect, with a message saying what happened.
"""

from __future__ import annotations

from tests.access.routes import Route, page


def _run(suffix: str = ""):
    return lambda objs: f"/runs/{objs['run'].pk}/{suffix}"


def _schedule(suffix: str):
    return lambda objs: f"/schedules/{objs['schedule'].pk}/{suffix}"


def _incident(suffix: str = ""):
    return lambda objs: f"/incidents/{objs['incident'].pk}/{suffix}"


SCHEDULE_BODY = {"name": "Morning run", "cron": "0 6 * * *", "select": "", "exclude": "", "after": "",
                 "enabled": "on", "on_overlap": "skip"}

RUN_PAGE_ROUTES: dict[str, Route] = {
    "runs/": page("run.view", "/runs/"),
    # Run now, everything: the run is planned and starts (it is rolled back after the case).
    "runs/new/": page("run.trigger", "/runs/new/", {"POST": 302}),
    "runs/next/": page("run.view", "/runs/next/"),
    "runs/<int:pk>/": page("run.view", _run()),
    "runs/<int:pk>/status.json": page("run.view", lambda objs: f"/runs/{objs['run'].pk}/status.json"),
    "runs/<int:pk>/retry/": page("run.trigger", _run("retry/"), {"POST": 302}),
    "runs/<int:pk>/cancel/": page("run.trigger", _run("cancel/"), {"POST": 302}),
    "schedules/": page("run.view", "/schedules/"),
    "schedules/new/": page(
        "schedule.manage", "/schedules/new/", {"GET": 200, "POST": 302}, bodies={"POST": SCHEDULE_BODY}
    ),
    "schedules/<int:pk>/edit/": page(
        "schedule.manage",
        _schedule("edit/"),
        {"GET": 200, "POST": 302},
        bodies={"POST": {**SCHEDULE_BODY, "name": "Hourly production run", "cron": "0 * * * *"}},
    ),
    "schedules/<int:pk>/run/": page("run.trigger", _schedule("run/"), {"POST": 302}),
    "incidents/": page("incident.view", "/incidents/"),
    "incidents/<int:pk>/": page("incident.view", _incident()),
    "incidents/<int:pk>/acknowledge/": page(
        "incident.manage", _incident("acknowledge/"), {"POST": 302}, bodies={"POST": {"note": "matrix"}}
    ),
    "incidents/<int:pk>/assign/": page(
        "incident.manage", _incident("assign/"), {"POST": 302}, bodies={"POST": {"assignee": "admin"}}
    ),
    "incidents/<int:pk>/resolve/": page(
        "incident.manage", _incident("resolve/"), {"POST": 302}, bodies={"POST": {"resolution": "matrix"}}
    ),
}
