"""Build logs: text a target's step writes, stored in chunks so a live log can grow.

A log is open (``is_live``) while its step writes to it and closed when the step is done.
The text a step may store is capped per build target by ``HARBOR_LOG_LIMIT_BYTES`` (UTF-8
bytes over all of the target's logs, default 8 MiB): what does not fit is dropped, and the
log says so in a line starting ``[harbor]``. Harbor's own logs (source ``harbor``, e.g. the
error that failed a target) are neither counted nor cut: they say why a target failed.

Reading: ``log_size`` and ``read_range`` give a byte range of a log without loading the
whole of it (the API's ``GET /api/v1/logs/<id>?offset=&length=``), ``iter_text`` streams it.
PostgreSQL text cannot hold NUL, so NUL characters are stored as U+FFFD.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Func, IntegerField, Sum

from builds.models import BuildLog, BuildLogChunk, BuildTarget

MAX_CHUNK = 1024 * 1024  # characters per stored chunk, as Harbormaster's 1 MiB chunks
HARBOR_SOURCE = "harbor"


def log_limit_bytes() -> int:
    """``HARBOR_LOG_LIMIT_BYTES``: UTF-8 bytes of log text kept per build target."""
    return settings.HARBOR_LOG_LIMIT_BYTES


class OctetLength(Func):
    """PostgreSQL's ``octet_length(text)``: a text's size in bytes."""

    function = "OCTET_LENGTH"
    output_field = IntegerField()


def open_log(target: BuildTarget, source: str, log_type: str) -> BuildLog:
    """Start a live log on ``target`` (``source`` e.g. a URI, ``log_type`` e.g. ``http.body``)."""
    return BuildLog.objects.create(target=target, source=source[:500], log_type=log_type)


def target_log_bytes(target_id: int) -> int:
    """Bytes of log text stored for the target, Harbor's own logs excepted."""
    total = (
        BuildLogChunk.objects.filter(log__target_id=target_id)
        .exclude(log__source=HARBOR_SOURCE)
        .aggregate(size=Sum(OctetLength("text")))["size"]
    )
    return total or 0


def append(log: BuildLog, text: str) -> int:
    """Append ``text`` to ``log``, cut to what the target's log limit still allows.

    Returns the number of bytes of ``text`` that were not stored; when some were cut, a
    ``[harbor]`` line saying how many follows what was kept. A step appending many small
    pieces should use ``LiveLog``, which says so once rather than after every piece.
    """
    kept, dropped = _fit(log, text)
    _store(log, kept)
    if dropped:
        _store(log, _cut_note(dropped))
    return dropped


def close(log: BuildLog) -> None:
    """Mark ``log`` complete: nothing more will be appended."""
    BuildLog.objects.filter(pk=log.pk).update(is_live=False)
    log.is_live = False


def write(target: BuildTarget, source: str, log_type: str, text: str) -> BuildLog:
    """Write a whole, closed log in one go (cut to the limit, as ``append``), in one
    transaction: readers see the whole log or none of it, never an empty one."""
    with transaction.atomic():
        log = open_log(target, source, log_type)
        append(log, text)
        close(log)
    return log


class LiveLog:
    """A log a running step appends to piece by piece (e.g. a command's output).

    Once the target's limit is reached it says so once, drops what follows, and on
    ``close()`` says how many bytes were dropped in all.
    """

    def __init__(self, target: BuildTarget, source: str, log_type: str):
        self.log = open_log(target, source, log_type)
        self.dropped = 0

    def append(self, text: str) -> None:
        """Store ``text`` (or what fits of it)."""
        if not text:
            return
        if self.dropped:
            self.dropped += len(text.encode())
            return
        kept, self.dropped = _fit(self.log, text)
        _store(self.log, kept)
        if self.dropped:
            _store(self.log, _limit_note())

    def close(self) -> None:
        """Close the log, with a last line counting the dropped bytes if any were."""
        if self.dropped:
            _store(self.log, f"\n[harbor] {self.dropped} bytes of output were not stored.\n")
        close(self.log)


def _fit(log: BuildLog, text: str) -> tuple[str, int]:
    """Cut ``text`` to the room left under the target's limit: (kept text, dropped bytes)."""
    text = text.replace("\x00", "\ufffd")
    if log.source == HARBOR_SOURCE:
        return text, 0
    room = log_limit_bytes() - target_log_bytes(log.target_id)
    data = text.encode()
    if len(data) <= room:
        return text, 0
    kept = data[: max(room, 0)].decode(errors="ignore")  # never split a character
    return kept, len(data) - len(kept.encode())


def _store(log: BuildLog, text: str) -> None:
    BuildLogChunk.objects.bulk_create(
        BuildLogChunk(log=log, text=text[start : start + MAX_CHUNK])
        for start in range(0, len(text), MAX_CHUNK)
    )


def _limit_note() -> str:
    return (
        f"\n[harbor] This build target's logs reached HARBOR_LOG_LIMIT_BYTES "
        f"({log_limit_bytes()} bytes); the rest of this log is not stored.\n"
    )


def _cut_note(dropped: int) -> str:
    return (
        f"\n[harbor] This build target's logs reached HARBOR_LOG_LIMIT_BYTES "
        f"({log_limit_bytes()} bytes); {dropped} bytes of this log were not stored.\n"
    )


# Reading


@dataclass(frozen=True)
class LogRange:
    """A byte range of a log's UTF-8 text: ``text`` covers bytes ``[offset, end)``."""

    offset: int
    end: int
    size: int
    text: str


def log_size(log: BuildLog) -> int:
    """The log's size in UTF-8 bytes."""
    total = log.chunks.aggregate(size=Sum(OctetLength("text")))["size"]
    return total or 0


def read_range(log: BuildLog, offset: int, length: int) -> LogRange:
    """Read ``length`` bytes of ``log`` from byte ``offset``, loading only the chunks they
    fall in. The range is narrowed to whole UTF-8 characters: a start inside a character
    moves forward to the next one, an end inside one moves back, so ``end`` is the offset
    to read on from. ``offset`` past the end gives an empty range at the end."""
    sizes = list(log.chunks.order_by("id").values_list("id", OctetLength("text")))
    size = sum(chunk_size for _, chunk_size in sizes)
    start, stop = min(offset, size), min(offset + length, size)
    wanted, first_start, position = [], None, 0
    for chunk_id, chunk_size in sizes:
        if position + chunk_size > start and position < stop:
            wanted.append(chunk_id)
            first_start = position if first_start is None else first_start
        position += chunk_size
    texts = dict(BuildLogChunk.objects.filter(id__in=wanted).values_list("id", "text"))
    data = "".join(texts[chunk_id] for chunk_id in wanted).encode()
    base = first_start or 0
    piece = data[start - base : stop - base]
    lead = _continuation_bytes(piece)
    piece = piece[lead:]
    text = piece.decode(errors="ignore")
    return LogRange(
        offset=start + lead, end=start + lead + len(text.encode()), size=size, text=text
    )


def _continuation_bytes(data: bytes) -> int:
    """How many bytes at the start of ``data`` continue a character begun before it."""
    count = 0
    while count < len(data) and data[count] & 0xC0 == 0x80:
        count += 1
    return count


def iter_text(log: BuildLog, batch: int = 16) -> Iterator[str]:
    """The log's text chunk by chunk, ``batch`` chunks per query (for downloads)."""
    ids = list(log.chunks.order_by("id").values_list("id", flat=True))
    for index in range(0, len(ids), batch):
        part = ids[index : index + batch]
        texts = dict(BuildLogChunk.objects.filter(id__in=part).values_list("id", "text"))
        for chunk_id in part:
            yield texts[chunk_id]
