"""REST API routes, included under ``api/`` by ``harbor/urls.py``."""

from django.urls import path

from messages_api import views

urlpatterns = [
    path("v1/sendmessage", views.SendMessageView.as_view(), name="api-sendmessage"),
    path("v1/builds", views.BuildListView.as_view(), name="api-build-list"),
    path("v1/builds/<int:pk>", views.BuildDetailView.as_view(), name="api-build-detail"),
    path("v1/messages/<int:pk>", views.MessageDetailView.as_view(), name="api-message-detail"),
    path("v1/targets/<int:pk>", views.TargetDetailView.as_view(), name="api-target-detail"),
]

# Build logs (messages_api/logs.py): a byte range as JSON, or the whole log as text.
from messages_api import logs as log_views  # noqa: E402

urlpatterns += [
    path("v1/logs/<int:pk>", log_views.LogRangeView.as_view(), name="api-log-detail"),
    path("v1/logs/<int:pk>/download", log_views.LogDownloadView.as_view(), name="api-log-download"),
]
