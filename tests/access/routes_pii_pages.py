"""Access policy of the PII review page (issue 9): entries as in tests/access/routes.py.

Legal and platform admins see the list (pii.view) and may ask for a model to be scanned again (a
redirect with a message); only legal confirms or rejects (pii.classify: 403 for every matrix persona,
none of whom is legal). The objects are objs["pii_tag"] and objs["model"] (tests/access/test_matrix.py).
"""

from __future__ import annotations

from tests.access.routes import Route, page


def _tag(verb: str):
    return lambda objs: f"/pii/{objs['pii_tag'].pk}/{verb}/"


PII_PAGE_ROUTES: dict[str, Route] = {
    "pii/": page("pii.view", "/pii/"),
    "pii/<int:pk>/confirm/": page("pii.classify", _tag("confirm"), {"POST": 302}, bodies={"POST": {"note": "m"}}),
    "pii/<int:pk>/reject/": page("pii.classify", _tag("reject"), {"POST": 302}, bodies={"POST": {"note": "m"}}),
    "pii/models/<str:name>/scan/": page("pii.view", lambda objs: f"/pii/models/{objs['model']}/scan/",
                                        {"POST": 302}),
}
