"""The forges' webhook routes, included at the site root by ``harbor/urls.py``."""

from django.urls import path

from forges.views import WebhookView

urlpatterns = [path("hooks/<str:name>", WebhookView.as_view(), name="forge-webhook")]
