"""The forges' webhook routes and the build page's "Redeliver" button, included at the site
root by ``harbor/urls.py``."""

from django.urls import path

from forges.views import WebhookView, redeliver_page

urlpatterns = [
    path("hooks/<str:name>", WebhookView.as_view(), name="forge-webhook"),
    path("deliveries/<int:pk>/redeliver", redeliver_page, name="delivery-redeliver"),
]
