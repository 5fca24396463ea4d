"""Every route of the portal. Each must have an entry in the access matrix (tests/access/routes.py)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from portal.views import audit, changes, editor, health, incidents, models, pages, profile, review, runs, sla
from portal.views import catalog as catalog_pages
from portal.views import explore as explore_pages
from portal.views import observe as observe_pages
from portal.views import pii as pii_pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True, extra_context={"failure_limit": settings.AXES_FAILURE_LIMIT}
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("profile/", profile.profile, name="profile"),
    path("profile/tokens/<int:pk>/revoke/", profile.revoke_token, name="token-revoke"),
    path("audit/", audit.audit_log, name="audit"),
    path("editor/", editor.editor, name="editor"),
    path("changes/", changes.my_changes, name="my-changes"),
    path("changes/new/", changes.new_change, name="change-new"),
    path("changes/<int:pk>/", changes.change_detail, name="change"),
    path("changes/<int:pk>/update/", changes.update_change, name="change-update"),
    path("changes/<int:pk>/submit/", changes.submit_change, name="change-submit"),
    path("changes/<int:pk>/withdraw/", changes.withdraw_change, name="change-withdraw"),
    path("changes/<int:pk>/abandon/", changes.abandon_change, name="change-abandon"),
    path("changes/<int:pk>/models/new/", models.new_model, name="change-model-new"),
    path("changes/<int:pk>/models/<str:name>/edit/", models.edit_model, name="change-model-edit"),
    path("changes/<int:pk>/models/<str:name>/delete/", changes.delete_model, name="change-model-delete"),
    path("review/", review.review_queue, name="review-queue"),
    path("review/policy/", review.review_policy, name="review-policy"),
    path("review/<int:pk>/", review.review_page, name="review"),
    path("review/<int:pk>/approve/", review.approve, name="review-approve"),
    path("review/<int:pk>/request-changes/", review.request_changes, name="review-request-changes"),
    path("review/<int:pk>/comment/", review.comment, name="review-comment"),
    path("review/<int:pk>/rebuild/", review.rebuild, name="review-rebuild"),
    path("runs/", runs.run_history, name="runs"),
    path("runs/new/", runs.run_new, name="run-new"),
    path("runs/next/", runs.runs_next, name="runs-next"),
    path("runs/<int:pk>/", runs.run_detail, name="run"),
    path("runs/<int:pk>/status.json", runs.run_status, name="run-status"),
    path("runs/<int:pk>/retry/", runs.run_retry, name="run-retry"),
    path("runs/<int:pk>/cancel/", runs.run_cancel, name="run-cancel"),
    path("schedules/", runs.schedule_list, name="schedules"),
    path("schedules/new/", runs.schedule_new, name="schedule-new"),
    path("schedules/<int:pk>/edit/", runs.schedule_edit, name="schedule-edit"),
    path("schedules/<int:pk>/run/", runs.schedule_run, name="schedule-run"),
    path("incidents/", incidents.incident_list, name="incidents"),
    path("incidents/<int:pk>/", incidents.incident_detail, name="incident"),
    path("incidents/<int:pk>/acknowledge/", incidents.incident_acknowledge, name="incident-acknowledge"),
    path("incidents/<int:pk>/assign/", incidents.incident_assign, name="incident-assign"),
    path("incidents/<int:pk>/resolve/", incidents.incident_resolve, name="incident-resolve"),
    path("sla/", sla.sla_dashboard, name="sla-dashboard"),
    path("sla/settings/", sla.sla_settings, name="sla-settings"),
    path("anomalies/", observe_pages.anomaly_list, name="anomalies"),
    path("anomalies/settings/", observe_pages.anomaly_settings, name="anomaly-settings"),
    path("pii/", pii_pages.pii_review, name="pii"),
    path("pii/<int:pk>/confirm/", pii_pages.pii_confirm, name="pii-confirm"),
    path("pii/<int:pk>/reject/", pii_pages.pii_reject, name="pii-reject"),
    path("pii/models/<str:name>/scan/", pii_pages.pii_scan, name="pii-scan"),
    path("catalog/", catalog_pages.catalog_search, name="catalog"),
    path("catalog/<str:name>/", catalog_pages.catalog_node, name="catalog-node"),
    path("catalog/<str:name>/lineage/", catalog_pages.catalog_lineage, name="catalog-lineage"),
    path("explore/<str:name>/", explore_pages.explore_model, name="explore"),
    path("explore/<str:name>/charts/", explore_pages.model_charts, name="explore-charts"),
    path("charts/<int:pk>/", explore_pages.chart_page, name="chart"),
    path("models/<str:name>/history/", models.model_history, name="model-history"),
    path("models/<str:name>/revert/", models.revert_model, name="model-revert"),
    path("models/<str:name>/edit/", models.edit_in_change, name="model-edit"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(("portal.api.urls", "api"))),
    # The schema moved under the versioned API; old links keep working.
    path("api/schema/", RedirectView.as_view(pattern_name="api:schema", permanent=True)),
]

handler400 = "portal.views.errors.bad_request"
handler403 = "portal.views.errors.permission_denied"
handler404 = "portal.views.errors.page_not_found"
handler500 = "portal.views.errors.server_error"
