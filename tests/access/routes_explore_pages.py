"""Access policy of the explore pages (issue 9): entries as in tests/access/routes.py.

Anyone with a role opens a model's explore page, its list of saved charts and a saved chart's page
(catalog.view): the link to a chart is for sharing. The pages read the index only; their script
fetches the data from the API (tests/access/routes_explore_api.py).
"""

from __future__ import annotations

from tests.access.routes import Route, page

EXPLORE_PAGE_ROUTES: dict[str, Route] = {
    "explore/<str:name>/": page("catalog.view", lambda objs: f"/explore/{objs['model']}/"),
    "explore/<str:name>/charts/": page("catalog.view", lambda objs: f"/explore/{objs['model']}/charts/"),
    "charts/<int:pk>/": page("catalog.view", lambda objs: f"/charts/{objs['chart'].pk}/"),
}
