"""Build logs as numbered lines for the web UI: a window of lines, the tail, a search.

A log may be megabytes, so nothing here reads all of it to show part of it: each chunk's
``newlines`` (stored by PostgreSQL) says which chunks hold lines ``a`` to ``b``, and only
those are loaded. Lines are numbered from 1; a line is shown capped at ``LINE_SHOWN``
characters (the download has it whole). Colour state does not carry in from text before a
window: a window starts in the default colours.
"""

from dataclasses import dataclass

from django.db.models import Max
from django.db.models.functions import Right
from django.utils.safestring import SafeString, mark_safe

from builds import ansi, logs
from builds.models import BuildLog, BuildLogChunk

WINDOW_LINES = 500  # lines a page of the log viewer shows
TAIL_LINES = 200  # lines of each log the build page shows
TAIL_BYTES = 64 * 1024  # bytes of each log's end read for them (and characters shown)
LINE_SHOWN = 5_000  # characters of one line shown
SEARCH_MATCHES = 200  # matching lines a search lists at most
SEARCH_BATCH = 8  # chunks read per query while searching


@dataclass(frozen=True)
class LogLine:
    """A line to show: its ``number`` (from 1) and its ``html`` (escaped, coloured)."""

    number: int
    html: SafeString
    cut: bool = False


@dataclass(frozen=True)
class LogWindow:
    """Lines ``first`` to ``last`` of a log of ``line_count`` lines."""

    lines: list[LogLine]
    first: int
    last: int
    line_count: int

    @property
    def previous_start(self) -> int | None:
        """Where the window before this one starts, or None at the start of the log."""
        return max(1, self.first - WINDOW_LINES) if self.first > 1 else None

    @property
    def next_start(self) -> int | None:
        """Where the window after this one starts, or None at the end of the log."""
        return self.last + 1 if self.last < self.line_count else None


def chunk_index(log: BuildLog) -> list[tuple[int, int]]:
    """``[(chunk id, newlines in it)]`` in order: one query reading no text."""
    return list(log.chunks.order_by("id").values_list("id", "newlines"))


def window(log: BuildLog, first: int | None = None, size: int = WINDOW_LINES) -> LogWindow:
    """Lines ``first`` … ``first + size - 1`` of ``log`` (the last ``size`` lines when
    ``first`` is None), numbered and rendered. A ``first`` past the end gives the last
    lines. At most three queries: the chunk index, the chunks those lines are in, and the
    last character of the log when they do not reach its end."""
    index = chunk_index(log)
    total = _line_total(index)
    if first is None or first > total:
        first = max(1, total - size + 1)
    last = min(total, max(1, first) + size - 1)
    first = min(max(1, first), last) if total else 1
    wanted, before = _chunks_holding(index, first, last)
    texts = dict(BuildLogChunk.objects.filter(id__in=wanted).values_list("id", "text"))
    # The wanted chunks start in line ``before + 1`` (perhaps not at its start): lines[k]
    # is line ``before + 1 + k``, and only lines[0] may be cut.
    lines = "".join(texts[chunk_id] for chunk_id in wanted).split("\n")
    shown = lines[first - before - 1 : last - before] if total else []
    return LogWindow(_numbered(shown, first), first, first + len(shown) - 1, total)


def _line_total(index: list[tuple[int, int]]) -> int:
    """Lines in the log with chunk ``index``: its newlines, and one more if the text after
    the last newline is not empty (one query for the last chunk's last character)."""
    if not index:
        return 0
    newlines = sum(count for _, count in index)
    last = BuildLogChunk.objects.filter(pk=index[-1][0]).values_list(Right("text", 1), flat=True)
    return newlines if last.first() == "\n" else newlines + 1


def _chunks_holding(index: list[tuple[int, int]], first: int, last: int) -> tuple[list, int]:
    """The chunk ids holding lines ``first`` … ``last`` and the newlines before the first
    of them. Line n begins after newline n - 1, so a chunk is needed from the one holding
    newline ``first - 1`` (or the first chunk) to the one holding newline ``last``."""
    wanted, before, seen = [], 0, 0
    for chunk_id, count in index:
        starts_after = seen
        seen += count
        if seen < first - 1:
            continue
        if not wanted:
            before = starts_after
        wanted.append(chunk_id)
        if seen >= last:
            break
    return wanted, before


def _numbered(lines: list[str], first: int) -> list[LogLine]:
    rendered = ansi.render_lines([line[:LINE_SHOWN] for line in lines])
    return [
        LogLine(first + offset, mark_safe(html), cut=len(lines[offset]) > LINE_SHOWN)  # noqa: S308 (escaped by ansi)
        for offset, html in enumerate(rendered)
    ]


def tail_of(log: BuildLog, chunks: list[BuildLogChunk], newlines: int) -> LogWindow:
    """The last ``TAIL_LINES`` lines of ``log`` from ``chunks``, its last few chunks in
    order (prefetched for many logs at once, ``queries.logs_with_tails``), and
    ``newlines``, the log's line breaks in all. Only lines within the last ``TAIL_BYTES``
    are shown, so a few huge lines do not make the build page huge; the first line shown
    is always whole."""
    if not chunks:
        return LogWindow([], 1, 0, 0)
    text = "".join(chunk.text for chunk in chunks)
    whole = log_is_whole(chunks, log) and len(text) <= TAIL_BYTES
    text = text[-TAIL_BYTES:]
    lines = text.split("\n")
    ends_with_newline = text.endswith("\n")
    if ends_with_newline:
        lines.pop()
    total = newlines if ends_with_newline else newlines + 1
    keep = TAIL_LINES if whole else min(TAIL_LINES, len(lines) - 1)
    shown = lines[-keep:] if keep > 0 else []
    first = total - len(shown) + 1
    return LogWindow(_numbered(shown, first), first, total, total)


def tail_text(log: BuildLog) -> tuple[str, bool]:
    """The text of a log loaded by ``queries.logs_with_tails`` (its last
    ``TAIL_BYTES`` or more) and whether that is the whole log; no query."""
    chunks = log.tail_chunks[::-1]
    return "".join(chunk.text for chunk in chunks), log_is_whole(chunks, log)


def log_is_whole(chunks: list[BuildLogChunk], log: BuildLog) -> bool:
    """Whether ``chunks`` begin at the log's first chunk (``log.first_chunk``, annotated)."""
    return not chunks or chunks[0].pk == getattr(log, "first_chunk", None)


@dataclass(frozen=True)
class Match:
    """A line holding the text searched for."""

    number: int
    html: SafeString


def search(log: BuildLog, text: str) -> tuple[list[Match], bool]:
    """Lines of ``log`` containing ``text`` (case-insensitive), at most ``SEARCH_MATCHES``,
    and whether there were more. Reads the log ``SEARCH_BATCH`` chunks per query, keeping
    only the line in progress between chunks."""
    needle = text.casefold()
    matches: list[Match] = []
    number, pending = 1, ""
    for piece in logs.iter_text(log, SEARCH_BATCH):
        lines = (pending + piece).split("\n")
        pending = lines.pop()
        for line in lines:
            if needle in line.casefold():
                if len(matches) == SEARCH_MATCHES:
                    return matches, True
                matches.append(_match(number, line))
            number += 1
    if pending and needle in pending.casefold() and len(matches) < SEARCH_MATCHES:
        matches.append(_match(number, pending))
    return matches, False


def _match(number: int, line: str) -> Match:
    html, _ = ansi.render_line(line[:LINE_SHOWN])
    return Match(number, mark_safe(html))  # noqa: S308 (escaped by ansi)


def log_version(log_id: int) -> str:
    """What changes when log ``log_id`` grows or closes (its newest chunk and whether it is
    still live), for the log viewer's poll; one query."""
    row = (
        BuildLog.objects.filter(pk=log_id)
        .annotate(newest=Max("chunks__id"))
        .values_list("newest", "is_live")
        .first()
    )
    return f"{row[0]}-{int(row[1])}" if row else ""
