"""REST API routes, included under ``api/`` by ``harbor/urls.py``."""

from django.urls import path, re_path

from messages_api import build_commands, views

urlpatterns = [
    path("v1/sendmessage", views.SendMessageView.as_view(), name="api-sendmessage"),
    path("v1/builds", views.BuildListView.as_view(), name="api-build-list"),
    path("v1/builds/<int:pk>", views.BuildDetailView.as_view(), name="api-build-detail"),
    path("v1/messages/<int:pk>", views.MessageDetailView.as_view(), name="api-message-detail"),
    path("v1/targets/<int:pk>", views.TargetDetailView.as_view(), name="api-target-detail"),
    path(
        "v1/builds/<int:pk>/commands",
        build_commands.BuildCommandView.as_view(),
        name="api-build-commands",
    ),
]

# Build plans as YAML (messages_api/plans.py).
from messages_api import plans as plan_views  # noqa: E402

urlpatterns += [
    path("v1/plans", plan_views.PlanListView.as_view(), name="api-plan-list"),
    path("v1/plans/<str:plan>", plan_views.PlanDetailView.as_view(), name="api-plan-detail"),
]

# Build logs (messages_api/logs.py): a byte range as JSON, or the whole log as text.
from messages_api import logs as log_views  # noqa: E402

urlpatterns += [
    path("v1/logs/<int:pk>", log_views.LogRangeView.as_view(), name="api-log-detail"),
    path("v1/logs/<int:pk>/download", log_views.LogDownloadView.as_view(), name="api-log-download"),
]

# JUnit reports, the OpenAPI description and the Conduit-compatible API. The Conduit
# route comes after the REST routes and its method names never contain "/", so it shadows
# nothing; whatever no route takes gets the API's JSON 404, not Django's HTML page.
from django.views.generic import RedirectView  # noqa: E402
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView  # noqa: E402

from forges import api as forge_api  # noqa: E402
from messages_api import openapi  # noqa: E402,F401  (registers the schema extensions)
from messages_api.conduit.transport import conduit_view  # noqa: E402
from messages_api.junit_views import JUnitReportView  # noqa: E402

urlpatterns += [
    path(
        "v1/builds/<int:pk>/deliveries",
        forge_api.BuildDeliveryListView.as_view(),
        name="api-build-deliveries",
    ),
    path(
        "v1/deliveries/<int:pk>/redeliver",
        forge_api.RedeliverView.as_view(),
        name="api-delivery-redeliver",
    ),
    path("v1/junit", JUnitReportView.as_view(), name="api-junit"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("schema/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Typed without the slash, the catch-alls below would answer these (Conduit, JSON 404).
    path("schema", RedirectView.as_view(pattern_name="api-schema", query_string=True)),
    path("schema/docs", RedirectView.as_view(pattern_name="api-docs", query_string=True)),
    path("<str:method_name>", conduit_view, name="conduit"),
    re_path(r"", views.not_found, name="api-not-found"),
]
