"""The ceiling endpoint's route (mounted under ``bench/`` by ``bench.urls``)."""

from django.urls import path

from bench.ceilings.views import CeilingMessageView

urlpatterns = [path("ceiling/message", CeilingMessageView.as_view(), name="bench-ceiling")]
