"""Access policy of the PII API (issue 9): entries as in tests/access/routes.py.

Legal and platform admins read the tags and ask for scans (pii.view); only legal confirms or rejects
(pii.classify), and no matrix persona is legal, so those answer 403 to everyone here (tests/pii
covers legal's own answers). The objects: objs["pii_tag"], a suggested tag of the model on main
(tests/access/test_matrix.py), and objs["model"], so a scan of it is queued (202; the queueing waits
for a commit that the matrix's savepoints never make).
"""

from __future__ import annotations

from tests.access.routes import Route, api


def _tag(verb: str):
    return lambda objs: f"/api/v1/pii-tags/{objs['pii_tag'].pk}/{verb}"


PII_API_ROUTES: dict[str, Route] = {
    "api/v1/pii-tags": api("pii.view", "/api/v1/pii-tags"),
    "api/v1/pii-tags/<int:pk>/confirm": api("pii.classify", _tag("confirm"), {"POST": 200},
                                            bodies={"POST": {"note": "matrix"}}),
    "api/v1/pii-tags/<int:pk>/reject": api("pii.classify", _tag("reject"), {"POST": 200},
                                           bodies={"POST": {"note": "matrix"}}),
    "api/v1/models/<str:name>/pii-scan": api(
        "pii.view", lambda objs: f"/api/v1/models/{objs['model']}/pii-scan", {"POST": 202}
    ),
}
