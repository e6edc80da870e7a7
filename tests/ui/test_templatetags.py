"""Badges and durations as the pages show them."""

from datetime import UTC, datetime, timedelta

from builds.templatetags.harbor_ui import duration, format_seconds, status_badge

START = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def test_durations_read_naturally_from_fractions_of_a_second_to_hours():
    assert format_seconds(0.25) == "0.25 s"
    assert format_seconds(4.56) == "4.6 s"
    assert format_seconds(42) == "42 s"
    assert format_seconds(75) == "1 min 15 s"
    assert format_seconds(3720) == "1 h 2 min"


def test_a_duration_with_an_unknown_end_is_a_dash():
    assert duration(START, None) == "—"
    assert duration(START, START + timedelta(seconds=90)) == "1 min 30 s"


def test_a_badge_carries_its_status_as_text_and_an_icon_not_only_colour():
    html = status_badge("failed")
    assert html.startswith('<span class="badge tone-bad status-failed"><svg class="icon"')
    assert 'aria-hidden="true"' in html and html.endswith("</svg> failed</span>")
    assert "tone-ok" in status_badge("passed") and "tone-pause" in status_badge("paused")
    assert "tone-run" in status_badge("waiting") and "tone-bad" in status_badge("deadlocked")
