"""Template helpers for Harbor's pages: status badges, durations, and masked settings.

Colour is never the only signal: every badge carries its status as text and an icon (inline
SVG, so no font or CDN is needed).
"""

import json
import math
from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from builds import log_view, step_graph
from builds import variables as build_variables
from builds.permissions import can_decide
from builds.queries import safe_uri
from builds.secrets import MASK, mask_config
from builds.unit_results import target_counts

register = template.Library()

# Tone of each status word (build, target, buildable, unit result, lint severity).
TONES = {
    "ok": {"passed", "pass", "active"},
    "bad": {"failed", "aborted", "error", "deadlocked", "fail", "broken", "aborting"},
    "run": {"pending", "building", "waiting", "preparing", "restarting", "resuming"},
    "pause": {"paused", "pausing", "unsound", "warning"},
}
TONE_OF = {status: tone for tone, statuses in TONES.items() for status in statuses}

# 16×16 icon shapes, drawn in the badge's text colour.
_RING = '<circle cx="8" cy="8" r="5" fill="none" stroke="currentColor" stroke-width="2"/>'
ICON_SHAPES = {
    "ok": '<path d="M6.4 12 2.5 8.1l1.4-1.4 2.5 2.5 5.7-5.7 1.4 1.4z"/>',
    "bad": '<path d="m4.2 2.8 3.8 3.8 3.8-3.8 1.4 1.4L9.4 8l3.8 3.8-1.4 1.4L8 9.4l-3.8 '
    '3.8-1.4-1.4L6.6 8 2.8 4.2z"/>',
    "run": '<circle cx="8" cy="8" r="4.5"/>',
    "pause": '<path d="M4 3h3v10H4zm5 0h3v10H9z"/>',
    "neutral": '<path d="M3 7h10v2H3z"/>',
    "pending": _RING,
    "waiting": _RING + '<path d="M7.2 5h1.6v3.2l2 1.2-.8 1.4-2.8-1.6z"/>',
}
ICON_OF_STATUS = {"pending": "pending", "preparing": "pending", "waiting": "waiting"}


def tone(status: str) -> str:
    """The tone (ok, bad, run, pause or neutral) a status is coloured with."""
    return TONE_OF.get(status, "neutral")


def icon(status: str) -> str:
    """The inline SVG icon of ``status`` (hidden from screen readers: the text says it)."""
    shape = ICON_SHAPES[ICON_OF_STATUS.get(status, tone(status))]
    return (
        '<svg class="icon" viewBox="0 0 16 16" width="12" height="12" fill="currentColor" '
        f'aria-hidden="true" focusable="false">{shape}</svg>'
    )


@register.simple_tag
def status_badge(status: str) -> str:
    """A badge showing ``status`` as an icon, its text, and its tone's colour."""
    return format_html(
        '<span class="badge tone-{} status-{}">{} {}</span>',
        tone(status),
        status.replace(" ", "-"),
        mark_safe(icon(status)),
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
    """A duration given in seconds (a unit result's), or ``—`` when unknown or not finite
    (infinity or NaN, which older rows may hold)."""
    if value is None or not math.isfinite(float(value)):
        return "—"
    return format_seconds(float(value))


def duration(start: datetime | None, end: datetime | None) -> str:
    """Time from ``start`` to ``end``, or ``—`` if either is unknown."""
    if start is None or end is None:
        return "—"
    return format_seconds(_seconds(end - start))


def ticking(seconds: float) -> str:
    """``seconds`` formatted, in a span static/harbor.js advances every second: a live
    region is re-sent only when something in it changed, so a time that grows by itself
    is counted on in the browser (from the seconds, not the clocks, which may differ)."""
    return format_html(
        '<span class="ticking" data-seconds="{}">{}</span>',
        f"{seconds:.1f}",
        format_seconds(seconds),
    )


def elapsed(start: datetime) -> str:
    """Time from ``start`` until now, marked as still running (counting on in the page)."""
    return format_html("{} so far", ticking(_seconds(timezone.now() - start)))


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
def target_ran(target, since: datetime | None = None) -> str:
    """How long a target ran: start to completion, or so far while it runs. A waiting
    target ran until it began waiting (``since``, when known): waiting is not running."""
    if target.status == "waiting" and since is not None:
        return duration(target.date_started, since)
    if target.date_started and target.date_completed is None and not target.is_complete:
        return elapsed(target.date_started)
    return duration(target.date_started, target.date_completed)


@register.simple_tag
def target_status_for(target, since: datetime | None) -> str:
    """How long a target has been in its status: ``waiting for 3 min 2 s`` while it is not
    complete (``since`` is when it entered that status), else ``passed after 1 min 5 s``
    (its run, start to completion), or the bare status when the times are unknown."""
    if not target.is_complete:
        if since is None:
            return target.status
        return format_html("{} for {}", target.status, ticking(_seconds(timezone.now() - since)))
    took = duration(target.date_started or target.date_created, target.date_completed)
    return target.status if took == "—" else f"{target.status} after {took}"


@register.filter
def config_rows(target) -> list[tuple[str, str, bool]]:
    """``target``'s configuration as ``masked_items`` shows it, with every secret hidden
    (``builds.secrets.mask_config``), the target's callback secret and secret variables'
    values included."""
    secrets = build_variables.secret_values(target)
    return masked_items(mask_config(target.config or {}, secrets))


@register.filter
def variable_rows(target) -> list[tuple[str, str, bool]]:
    """``target``'s variables as ``masked_items`` shows them, secret ones hidden
    (``builds.variables.mask_variables``)."""
    secrets = build_variables.secret_values(target)
    return masked_items(build_variables.mask_variables(target.variables or {}, secrets))


@register.filter
def parameter_rows(parameters: dict) -> list[tuple[str, str, bool]]:
    """A build's parameters as ``masked_items`` shows them, those named like secrets (and
    secret-looking values) hidden."""
    return masked_items(mask_config(parameters or {}))


def masked_items(mapping: dict) -> list[tuple[str, str, bool]]:
    """An already masked ``mapping`` as ``[(name, shown value, masked)]`` sorted by name:
    nested dicts flattened to dotted names, values shown as text (JSON for non-strings),
    ``masked`` telling whether the value holds a mask."""
    rows = []
    for name, value in _flatten(mapping):
        text = value if isinstance(value, str) else json.dumps(value)
        rows.append((name, text, MASK in text))
    return sorted(rows)


def _flatten(mapping: dict, prefix: str = ""):
    for name, value in mapping.items():
        full = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{full}.")
        else:
            yield full, value


@register.filter
def get_item(mapping, key: str):
    """``mapping[key]``, or None: for keys a template cannot spell (``ui.external``)."""
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def unit_counts(target) -> list[tuple[str, int]]:
    """``[(result, how many)]`` of a target loaded by ``queries.targets_of_generation``
    (``builds.unit_results.target_counts``)."""
    return target_counts(target)


@register.filter
def capped(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in ``…`` when it was longer."""
    text, limit = text or "", int(limit)
    return text if len(text) <= limit else text[:limit] + "…"


@register.filter
def uri_of(artifact) -> str:
    """The http(s) URI of a ``uri`` artifact, or ``""`` when it has none that is safe to
    link to."""
    uri = (artifact.data or {}).get("uri")
    return uri if safe_uri(uri) else ""


def _seconds(delta: timedelta) -> float:
    return max(delta.total_seconds(), 0.0)


@register.simple_tag
def is_stuck(target, since: datetime | None) -> bool:
    """Whether ``target`` has been pending, building or waiting for longer than its step's
    ``stuck_after`` seconds (``since``: when it entered its present status). Derived when
    shown, never stored."""
    limit = (target.config or {}).get("stuck_after")
    if not limit or target.is_complete or since is None:
        return False
    return (timezone.now() - since).total_seconds() > float(limit)


@register.filter
def call_answer(target) -> dict | None:
    """What the outside system answered to the HTTP call that started ``target``:
    ``{"status": "HTTP 202 Accepted", "body": "<at most 500 characters>"}`` from its
    ``http.head`` and ``http.body`` logs (loaded by ``queries.logs_with_tails``: no query),
    or None if it made no call. The logs were written masked."""
    logs = {log.log_type: log for log in target.logs.all()}
    head = logs.get("http.head")
    if head is None:
        return None
    head_text, _ = log_view.tail_text(head)
    status = next((line for line in head_text.splitlines() if line.startswith("HTTP ")), "")
    body, whole = log_view.tail_text(logs["http.body"]) if "http.body" in logs else ("", True)
    return {"status": status, "body": body[:500], "cut": len(body) > 500 or not whole}


@register.filter
def work_count(messages) -> int:
    """How many of ``messages`` (a target's, prefetched) are ``work`` messages."""
    return sum(1 for message in messages if message.type == "work")


@register.filter
def log_tail(log) -> log_view.LogWindow:
    """The last lines of a log loaded by ``queries.logs_with_tails``, numbered and coloured."""
    return log_view.tail_of(log, log.tail_chunks[::-1], log.newline_total)


@register.filter
def tone_of(status: str) -> str:
    """The tone (ok, bad, run, pause or neutral) ``status`` is coloured with."""
    return tone(status)


@register.filter(name="step_graph")
def step_graph_of(rows) -> step_graph.Graph:
    """The SVG layout of a build's step rows (``builds.step_graph``)."""
    return step_graph.graph(rows)


@register.filter
def percent(rate: float) -> str:
    """A rate from 0 to 1 as a whole percentage: ``0.857`` → ``86 %``."""
    return f"{round(rate * 100)} %"


@register.filter
def may_decide(target, user) -> bool:
    """``target|may_decide:user``: ``builds.permissions.can_decide`` for the approval
    ``target``'s step (one query for a user outside staff; only approval targets are
    asked)."""
    return can_decide(user, target.config)
