"""Badges and durations as the pages show them."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from django.utils import timezone
from django.utils.html import strip_tags

from builds.queries import in_dependency_order
from builds.secrets import MASK
from builds.templatetags.harbor_ui import (
    config_rows,
    duration,
    format_seconds,
    status_badge,
    target_ran,
    target_status_for,
    variable_rows,
)

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


def test_settings_named_like_secrets_are_masked_and_nested_ones_flattened():
    target = SimpleNamespace(
        phid="",
        variables={},
        config={"uri": "https://x/?k=abcd1234", "login": {"password": "pw", "user": "u"}},
    )
    assert config_rows(target) == [
        ("login.password", MASK, True),
        ("login.user", "u", False),
        ("uri", "https://x/?k=abcd1234", False),
    ]
    target.config = {"Api_Token": "t", "secret": {"a": 1}}
    assert config_rows(target) == [("Api_Token", MASK, True), ("secret", MASK, True)]


def test_secret_variables_values_are_masked_wherever_they_appear():
    target = SimpleNamespace(
        phid="",
        variables={"build.param.deploy_token": "abcd1234", "step.key": "deploy"},
        config={"uri": "https://x/?k=abcd1234", "n": 3},
    )
    assert config_rows(target) == [("n", "3", False), ("uri", f"https://x/?k={MASK}", True)]
    assert variable_rows(target) == [
        ("build.param.deploy_token", MASK, True),
        ("step.key", "deploy", False),
    ]


def test_steps_are_ordered_after_what_they_depend_on_and_cycles_go_last():
    steps = [
        {"key": "c", "depends_on": ["b"]},
        {"key": "b", "depends_on": ["a"]},
        {"key": "x", "depends_on": ["y"]},
        {"key": "y", "depends_on": ["x"]},
        {"key": "a"},
        {"key": "m", "depends_on": ["missing"]},
    ]
    ordered = in_dependency_order(
        steps, key=lambda s: s["key"], depends_on=lambda s: s.get("depends_on")
    )
    assert [s["key"] for s in ordered] == ["a", "b", "c", "x", "y", "m"]


def test_a_targets_status_reads_as_how_long_it_has_been_so():
    waiting = SimpleNamespace(status="waiting", is_complete=False)
    since = timezone.now() - timedelta(minutes=3, seconds=5)
    shown = target_status_for(waiting, since)
    assert strip_tags(shown) == "waiting for 3 min 5 s"
    assert '<span class="ticking" data-seconds="185.' in shown  # counted on in the browser
    assert target_status_for(waiting, None) == "waiting"
    passed = SimpleNamespace(
        status="passed",
        is_complete=True,
        date_created=START,
        date_started=START,
        date_completed=START + timedelta(seconds=65),
    )
    assert target_status_for(passed, None) == "passed after 1 min 5 s"


def test_a_waiting_target_ran_until_it_began_waiting():
    waiting = SimpleNamespace(
        status="waiting", is_complete=False, date_started=START, date_completed=None
    )
    assert target_ran(waiting, START + timedelta(seconds=42)) == "42 s"


def test_a_duration_that_is_not_finite_shows_as_unknown():
    from builds.templatetags.harbor_ui import seconds

    assert seconds(float("inf")) == "—"
    assert seconds(float("-inf")) == "—"
    assert seconds(float("nan")) == "—"
    assert seconds(1.5) == "1.5 s"
