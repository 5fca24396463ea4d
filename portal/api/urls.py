"""Routes of /api/v1/. Resources have no trailing slash; the schema and docs pages do.

Every route here must also appear in the access matrix (tests/access/routes.py), or its test fails.
"""

from django.contrib.auth.decorators import login_required
from django.urls import path
from drf_spectacular.views import SpectacularSwaggerView

from portal.api import changes, editor, reviews, runs, sla, validate, views
from portal.api.schema import SchemaView

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    path("tokens", views.TokenListView.as_view(), name="tokens"),
    path("tokens/<int:pk>", views.TokenDetailView.as_view(), name="token"),
    path("users", views.UserListView.as_view(), name="users"),
    path("users/<str:username>", views.UserDetailView.as_view(), name="user"),
    path("audit", views.AuditListView.as_view(), name="audit"),
    path("changes", changes.ChangeListView.as_view(), name="changes"),
    path("changes/<int:pk>", changes.ChangeDetailView.as_view(), name="change"),
    path("changes/<int:pk>/submit", changes.ChangeSubmitView.as_view(), name="change-submit"),
    path("changes/<int:pk>/withdraw", changes.ChangeWithdrawView.as_view(), name="change-withdraw"),
    path("changes/<int:pk>/abandon", changes.ChangeAbandonView.as_view(), name="change-abandon"),
    path("changes/<int:pk>/update", changes.ChangeUpdateView.as_view(), name="change-update"),
    path("changes/<int:pk>/merge", changes.ChangeMergeView.as_view(), name="change-merge"),
    path("changes/<int:pk>/diff", changes.ChangeDiffView.as_view(), name="change-diff"),
    path("changes/<int:pk>/commits", changes.ChangeCommitsView.as_view(), name="change-commits"),
    path("changes/<int:pk>/models", changes.ChangeModelListView.as_view(), name="change-models"),
    path("changes/<int:pk>/models/<str:name>", changes.ChangeModelView.as_view(), name="change-model"),
    path("changes/<int:pk>/models/<str:name>/rename", changes.ChangeModelRenameView.as_view(),
         name="change-model-rename"),
    path("changes/<int:pk>/models/<str:name>/test", editor.ModelTestView.as_view(), name="change-model-test"),
    path("test-runs/<int:pk>", editor.TestRunView.as_view(), name="test-run"),
    path("preview", editor.PreviewView.as_view(), name="preview"),
    path("review-queue", reviews.ReviewQueueView.as_view(), name="review-queue"),
    path("changes/<int:pk>/review", reviews.ChangeReviewView.as_view(), name="change-review"),
    path("changes/<int:pk>/approve", reviews.ChangeApproveView.as_view(), name="change-approve"),
    path("changes/<int:pk>/request-changes", reviews.ChangeRequestChangesView.as_view(),
         name="change-request-changes"),
    path("changes/<int:pk>/comments", reviews.ChangeCommentsView.as_view(), name="change-comments"),
    path("changes/<int:pk>/ci-builds", reviews.ChangeBuildsView.as_view(), name="change-ci-builds"),
    path("ci-builds/<int:pk>", reviews.BuildDetailView.as_view(), name="ci-build"),
    path("changes/<int:pk>/deployments", reviews.ChangeDeploymentsView.as_view(), name="change-deployments"),
    path("deployments/<int:pk>", reviews.DeploymentDetailView.as_view(), name="deployment"),
    path("review-policy", reviews.ReviewPolicyView.as_view(), name="review-policy"),
    path("schedules", runs.ScheduleListView.as_view(), name="schedules"),
    path("schedules/<int:pk>", runs.ScheduleDetailView.as_view(), name="schedule"),
    path("schedules/<int:pk>/pause", runs.SchedulePauseView.as_view(), name="schedule-pause"),
    path("schedules/<int:pk>/resume", runs.ScheduleResumeView.as_view(), name="schedule-resume"),
    path("schedules/<int:pk>/run", runs.ScheduleRunView.as_view(), name="schedule-run"),
    path("runs", runs.RunListView.as_view(), name="runs"),
    path("runs/next", runs.RunNextView.as_view(), name="runs-next"),
    path("runs/<int:pk>", runs.RunDetailView.as_view(), name="run"),
    path("runs/<int:pk>/retry", runs.RunRetryView.as_view(), name="run-retry"),
    path("runs/<int:pk>/cancel", runs.RunCancelView.as_view(), name="run-cancel"),
    path("incidents", runs.IncidentListView.as_view(), name="incidents"),
    path("incidents/<int:pk>", runs.IncidentDetailView.as_view(), name="incident"),
    path("incidents/<int:pk>/acknowledge", runs.IncidentAcknowledgeView.as_view(), name="incident-acknowledge"),
    path("incidents/<int:pk>/assign", runs.IncidentAssignView.as_view(), name="incident-assign"),
    path("incidents/<int:pk>/resolve", runs.IncidentResolveView.as_view(), name="incident-resolve"),
    path("sla/settings", sla.SlaSettingsView.as_view(), name="sla-settings"),
    path("sla/closing-days", sla.ClosingDayListView.as_view(), name="sla-closing-days"),
    path("sla/closing-days/<int:pk>", sla.ClosingDayDetailView.as_view(), name="sla-closing-day"),
    path("sla/items", sla.SlaItemListView.as_view(), name="sla-items"),
    path("sla/report", sla.SlaReportView.as_view(), name="sla-report"),
    path("models", changes.ModelListView.as_view(), name="models"),
    path("models/<str:name>", changes.ModelDetailView.as_view(), name="model"),
    path("models/<str:name>/history", changes.ModelHistoryView.as_view(), name="model-history"),
    path("models/<str:name>/versions/<str:sha>/diff", changes.ModelVersionDiffView.as_view(),
         name="model-version-diff"),
    path("models/<str:name>/revert", changes.ModelRevertView.as_view(), name="model-revert"),
    path("project", changes.ProjectView.as_view(), name="project"),
    path("validate", validate.ValidateView.as_view(), name="validate"),
    path("schema/", SchemaView.as_view(), name="schema"),
    # A page for people: a visitor who is not logged in is sent to the login page, not given a 401.
    path("docs/", login_required(SpectacularSwaggerView.as_view(url_name="api:schema")), name="docs"),
]
