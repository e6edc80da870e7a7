"""REST API routes, included under ``api/`` by ``harbor/urls.py``."""

from django.urls import path

from messages_api import views

urlpatterns = [
    path("v1/sendmessage", views.SendMessageView.as_view(), name="api-sendmessage"),
    path("v1/builds", views.BuildListView.as_view(), name="api-build-list"),
    path("v1/builds/<int:pk>", views.BuildDetailView.as_view(), name="api-build-detail"),
]
