"""Harbor's URLs plus the ceiling endpoint (``bench.settings`` only)."""

from django.urls import include, path

from harbor.urls import urlpatterns as harbor_urlpatterns

urlpatterns = [path("bench/", include("bench.ceilings.urls")), *harbor_urlpatterns]
