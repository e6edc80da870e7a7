"""Finding work whose follow-up was lost (DESIGN.md §3, "the repair task").

A follow-up task can be lost when a worker dies (with the Redis broker an unacknowledged
task returns only after the visibility timeout, an hour by default) or when Redis loses its
data. The repair looks for exactly what such a loss leaves behind, older than ``bound``
seconds, and hands it back to the normal path; it never writes a status itself.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from builds.models import Build, BuildMessage, BuildTarget

T = BuildTarget.Status


@dataclass
class LostWork:
    """Builds needing an ``update_build`` and targets needing a ``run_target``."""

    build_ids: list[int] = field(default_factory=list)
    target_ids: list[int] = field(default_factory=list)


def find_lost_work(bound_seconds: float, limit: int = 500) -> LostWork:
    """Return builds and targets stuck for longer than ``bound_seconds``:

    - pending builds never started, and building or paused builds with an unconsumed
      command, or with a waiting current-generation target that has an unconsumed
      pass/fail message;
    - pending targets never claimed, and building targets whose lease has expired.
    """
    cutoff = timezone.now() - timedelta(seconds=bound_seconds)
    stale_verdict = BuildMessage.objects.filter(
        target_id=OuterRef("pk"),
        is_consumed=False,
        type__in=BuildMessage.VERDICTS,
        date_created__lt=cutoff,
    )
    waiting_with_verdict = BuildTarget.objects.filter(
        build_id=OuterRef("pk"), status=T.WAITING, generation=OuterRef("generation")
    ).filter(Exists(stale_verdict))
    stale_command = BuildMessage.objects.filter(
        build_id=OuterRef("pk"),
        is_consumed=False,
        type__in=BuildMessage.COMMANDS,
        date_created__lt=cutoff,
    )
    builds = Build.objects.filter(
        Q(status=Build.Status.PENDING, date_created__lt=cutoff)
        | Q(status=Build.Status.BUILDING) & Exists(waiting_with_verdict)
        | ~Q(status=Build.Status.INACTIVE) & Exists(stale_command)
    ).values_list("pk", flat=True)[:limit]
    targets = BuildTarget.objects.filter(
        Q(status=T.PENDING, date_created__lt=cutoff)
        | Q(status=T.BUILDING, lease_expires__lt=timezone.now())
    ).values_list("pk", flat=True)[:limit]
    return LostWork(list(builds), list(targets))
