"""Finding waiting targets whose wait has timed out (Beyond Harbormaster, docs/design.md §6.6).

The deadline is stored on the target when it starts waiting; a periodic task looks for
builds with a waiting target past its deadline and fires ``update_build``; the pass itself
settles the target (``builds.engine.passes._expire_waits``), under the build's row lock.
"""

from django.db.models import F
from django.utils import timezone

from builds.models import Build, BuildTarget


def builds_with_expired_waits(limit: int = 500) -> list[int]:
    """Ids of building builds with a current-generation waiting target past its deadline."""
    return list(
        BuildTarget.objects.filter(
            status=BuildTarget.Status.WAITING,
            wait_deadline__lte=timezone.now(),
            build__status=Build.Status.BUILDING,
            generation=F("build__generation"),
        )
        .values_list("build_id", flat=True)
        .distinct()[:limit]
    )
