"""Pages load htmx from Harbor itself (no CDN) and carry the poll-failure banner."""

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_pages_load_the_vendored_htmx_and_the_poll_failure_script(signed_in):
    html = signed_in.get(reverse("build-list")).content.decode()
    assert 'src="/static/vendor/htmx.min.js"' in html
    assert 'src="/static/harbor.js"' in html
    assert "https://" not in html
    assert finders.find("vendor/htmx.min.js") and finders.find("harbor.css")


def test_the_poll_failure_banner_is_present_and_hidden_until_a_poll_fails(signed_in):
    html = signed_in.get(reverse("build-list")).content.decode()
    assert '<div id="poll-error" class="banner banner-error" role="alert" hidden>' in html
    script = Path(finders.find("harbor.js")).read_text()
    assert "htmx:sendError" in script and "htmx:responseError" in script
