"""Routes of /api/v1/. Resources have no trailing slash; the schema and docs pages do.

Every route here must also appear in the access matrix (tests/access/routes.py), or its test fails.
"""

from django.contrib.auth.decorators import login_required
from django.urls import path
from drf_spectacular.views import SpectacularSwaggerView

from portal.api import views
from portal.api.schema import SchemaView

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    path("tokens", views.TokenListView.as_view(), name="tokens"),
    path("tokens/<int:pk>", views.TokenDetailView.as_view(), name="token"),
    path("users", views.UserListView.as_view(), name="users"),
    path("users/<str:username>", views.UserDetailView.as_view(), name="user"),
    path("audit", views.AuditListView.as_view(), name="audit"),
    path("schema/", SchemaView.as_view(), name="schema"),
    # A page for people: a visitor who is not logged in is sent to the login page, not given a 401.
    path("docs/", login_required(SpectacularSwaggerView.as_view(url_name="api:schema")), name="docs"),
]
