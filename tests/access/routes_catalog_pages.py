"""Access policy of the catalog pages (issue 9): entries as in tests/access/routes.py.

Everyone with a role reads the catalog (catalog.view): the search page, a node's page and its
lineage; outsiders get 403, visitors the login page. The node is objs["model"], the model the
matrix merges to main.
"""

from __future__ import annotations

from tests.access.routes import Route, page

CATALOG_PAGE_ROUTES: dict[str, Route] = {
    "catalog/": page("catalog.view", "/catalog/?q=orders"),
    "catalog/<str:name>/": page("catalog.view", lambda objs: f"/catalog/{objs['model']}/"),
    "catalog/<str:name>/lineage/": page("catalog.view", lambda objs: f"/catalog/{objs['model']}/lineage/?column=id"),
}
