"""Access policy of the service agreement's pages (issue 8): entries as in tests/access/routes.py.

Only platform admins open the dashboard and the settings (sla.view); everyone else logged in gets 403
whatever the method. The settings form answers a valid save with a redirect back to the page.
"""

from __future__ import annotations

from tests.access.routes import Route, page

SETTINGS_BODY = {"action": "settings", "review_days": "3", "incident_hours": "4", "run_tolerance_minutes": "5",
                 "freshness_tolerance_minutes": "15", "at_risk_percent": "75", "review_target": "95",
                 "incident_target": "95", "run_target": "99"}

SLA_PAGE_ROUTES: dict[str, Route] = {
    "sla/": page("sla.view", "/sla/"),
    "sla/settings/": page(
        "sla.view", "/sla/settings/", {"GET": 200, "POST": 302}, bodies={"POST": SETTINGS_BODY}
    ),
}
