"""Template helpers for Harbor's pages: status badges and durations.

Colour is never the only signal: every badge carries its status as text and a symbol.
"""

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()

# Tone of each status word (build, target, buildable, unit result, lint severity).
TONES = {
    "ok": {"passed", "pass", "active"},
    "bad": {"failed", "aborted", "error", "deadlocked", "fail", "broken", "aborting"},
    "run": {"pending", "building", "waiting", "preparing", "restarting", "resuming"},
    "pause": {"paused", "pausing", "unsound", "warning"},
}
TONE_OF = {status: tone for tone, statuses in TONES.items() for status in statuses}
SYMBOLS = {"ok": "✓", "bad": "✗", "run": "●", "pause": "‖", "neutral": "–"}


def tone(status: str) -> str:
    """The tone (ok, bad, run, pause or neutral) a status is coloured with."""
    return TONE_OF.get(status, "neutral")


@register.simple_tag
def status_badge(status: str) -> str:
    """A badge showing ``status`` as a symbol, its text, and its tone's colour."""
    status_tone = tone(status)
    return format_html(
        '<span class="badge tone-{}"><span aria-hidden="true">{}</span> {}</span>',
        status_tone,
        SYMBOLS[status_tone],
        status,
    )


def format_seconds(seconds: float) -> str:
    """``0.25`` → ``0.25 s``, ``75`` → ``1 min 15 s``, ``3720`` → ``1 h 2 min``."""
    if seconds < 10:
        return f"{seconds:.2g} s" if seconds < 1 else f"{seconds:.1f} s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


@register.filter
def seconds(value: float | None) -> str:
    """A duration given in seconds (a unit result's), or ``—`` when unknown."""
    return "—" if value is None else format_seconds(float(value))


def duration(start: datetime | None, end: datetime | None) -> str:
    """Time from ``start`` to ``end``, or ``—`` if either is unknown."""
    if start is None or end is None:
        return "—"
    return format_seconds(_seconds(end - start))


def elapsed(start: datetime) -> str:
    """Time from ``start`` until now, marked as still running."""
    return f"{format_seconds(_seconds(timezone.now() - start))} so far"


@register.simple_tag
def build_duration(build) -> str:
    """A build's run time: until it completed (``date_completed``, annotated by
    ``builds.queries.builds_for_display``), or so far while it is not complete. A restarted
    build counts from its creation, through every generation."""
    if not build.is_complete:
        return elapsed(build.date_created)
    return duration(build.date_created, getattr(build, "date_completed", None))


@register.simple_tag
def target_queued(target) -> str:
    """How long a target waited for a worker: creation to start, or so far."""
    if target.date_started is None and not target.is_complete:
        return elapsed(target.date_created)
    return duration(target.date_created, target.date_started)


@register.simple_tag
def target_ran(target) -> str:
    """How long a target ran: start to completion, or so far while it runs or waits."""
    if target.date_started and target.date_completed is None and not target.is_complete:
        return elapsed(target.date_started)
    return duration(target.date_started, target.date_completed)


@register.filter
def tail(text: str, limit: int) -> str:
    """The last ``limit`` characters of ``text`` (a log shown on a page that polls)."""
    return text[-int(limit) :]


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)
