"""Harbor's URLs: the web UI, the REST API, forges' webhooks, the admin, the health
check and the metrics."""

from django.contrib import admin
from django.urls import include, path

from harbor.metrics import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
    path("api/", include("messages_api.urls")),
    path("", include("forges.urls")),
    path("", include("builds.urls")),
]
