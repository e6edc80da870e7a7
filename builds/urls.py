"""URLs of the web UI (included at the site root) and the health check."""

from django.contrib.auth import views as auth_views
from django.urls import path, re_path

from builds import views

urlpatterns = [
    path("", views.build_list, name="build-list"),
    path("builds/<int:pk>/", views.build_detail, name="build-detail"),
    path("builds/<int:pk>/runs/<int:generation>/", views.build_detail, name="build-run"),
    path("builds/<int:pk>/commands/<str:command>/", views.build_command, name="build-command"),
    path("builds/<int:pk>/steps/<str:step>/rerun/", views.step_rerun, name="step-rerun"),
    path("approvals/", views.approval_list, name="approval-list"),
    path("targets/<int:pk>/decide/", views.approval_decide, name="approval-decide"),
    path("unit-results/<int:pk>/", views.unit_result_detail, name="unit-result"),
    path("logs/<int:pk>/", views.log_detail, name="log-detail"),
    path("logs/<int:pk>/download", views.log_download, name="log-download"),
    path("buildables/<int:pk>/", views.buildable_detail, name="buildable-detail"),
    path("plans/", views.plan_list, name="plan-list"),
    path("plans/<int:pk>/", views.plan_detail, name="plan-detail"),
    path("plans/<int:pk>/run", views.plan_run, name="plan-run"),
    path("plans/<int:pk>/versions/new", views.plan_upload, name="plan-upload"),
    path("plans/<int:pk>/versions/<int:number>/", views.plan_version, name="plan-version"),
    path("waiting/", views.waiting_list, name="waiting-list"),
    re_path(
        r"^plans/(?P<pk>\d+)/tests/(?P<key>[0-9a-f]{32})/$", views.test_detail, name="plan-test"
    ),
    path("tokens/", views.token_list, name="token-list"),
    path("tokens/<int:pk>/revoke", views.token_revoke, name="token-revoke"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
]
