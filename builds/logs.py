"""Build logs: text a target's step writes, stored in chunks so a live log can grow."""

from builds.models import BuildLog, BuildLogChunk, BuildTarget

MAX_CHUNK = 1024 * 1024  # characters per stored chunk, as Harbormaster's 1 MiB chunks


def open_log(target: BuildTarget, source: str, log_type: str) -> BuildLog:
    """Start a live log on ``target`` (``source`` e.g. a URI, ``log_type`` e.g. ``http.body``)."""
    return BuildLog.objects.create(target=target, source=source[:500], log_type=log_type)


def append(log: BuildLog, text: str) -> None:
    """Append ``text`` to ``log`` in chunks of at most ``MAX_CHUNK`` characters."""
    BuildLogChunk.objects.bulk_create(
        BuildLogChunk(log=log, text=text[start : start + MAX_CHUNK])
        for start in range(0, len(text), MAX_CHUNK)
    )


def close(log: BuildLog) -> None:
    """Mark ``log`` complete: nothing more will be appended."""
    BuildLog.objects.filter(pk=log.pk).update(is_live=False)
    log.is_live = False


def write(target: BuildTarget, source: str, log_type: str, text: str) -> BuildLog:
    """Write a whole, closed log in one go."""
    log = open_log(target, source, log_type)
    append(log, text)
    close(log)
    return log
