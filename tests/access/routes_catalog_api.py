"""Access policy of the catalog API (issue 9): entries as in tests/access/routes.py.

Reading only, for everyone with a role (catalog.view); outsiders 403, visitors 401. The node is
objs["model"] on main; its lineage is asked for one column, so column lineage is in the matrix too.
"""

from __future__ import annotations

from tests.access.routes import Route, api

CATALOG_API_ROUTES: dict[str, Route] = {
    "api/v1/search": api("catalog.view", "/api/v1/search?q=orders"),
    "api/v1/catalog/<str:name>": api("catalog.view", lambda objs: f"/api/v1/catalog/{objs['model']}"),
    "api/v1/catalog/<str:name>/lineage": api(
        "catalog.view", lambda objs: f"/api/v1/catalog/{objs['model']}/lineage?column=id"
    ),
}
