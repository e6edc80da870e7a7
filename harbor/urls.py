"""Harbor's URLs: the web UI, the REST API, forges' webhooks, the admin and the health
check."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("messages_api.urls")),
    path("", include("forges.urls")),
    path("", include("builds.urls")),
]
