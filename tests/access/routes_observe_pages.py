"""Access policy of the data watch's pages (issue 9): entries as in tests/access/routes.py.

Analysts, reviewers and admins read the anomalies and schema changes (incident.view); only platform
admins open and save the sensitivity form (anomaly.manage), which answers a save with a redirect.
"""

from __future__ import annotations

from tests.access.routes import Route, page

SETTINGS_BODY = {"model": "", "enabled": "on", "warn_score": "4", "incident_score": "8", "min_history": "8"}

OBSERVE_PAGE_ROUTES: dict[str, Route] = {
    "anomalies/": page("incident.view", "/anomalies/"),
    "anomalies/settings/": page(
        "anomaly.manage", "/anomalies/settings/", {"GET": 200, "POST": 302}, bodies={"POST": SETTINGS_BODY}
    ),
}
