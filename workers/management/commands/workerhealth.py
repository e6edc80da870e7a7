"""``manage.py workerhealth``: are Harbor's Celery workers alive (from their heartbeats,
``workers.heartbeat``)?

``--name engine@host1`` checks that worker; ``--queue harbor.engine`` (repeatable) checks
that at least one live worker serves that queue; with neither, every worker with a
heartbeat is listed and at least one must be alive. Prints one line per worker; exit
status 0 when the checks pass, 1 otherwise (so it serves as a container's or a timer's
health check), 1 too when Redis cannot be reached.
"""

import redis
from django.core.management.base import BaseCommand, CommandError

from workers.heartbeat import heartbeats


class Command(BaseCommand):
    help = "Check Celery workers' heartbeats: a worker by --name, or a live one per --queue."

    def add_arguments(self, parser):
        parser.add_argument("--name", action="append", default=[], help="a worker's name")
        parser.add_argument(
            "--queue", action="append", default=[], help="a queue some live worker must serve"
        )

    def handle(self, *args, name, queue, **options):
        try:
            beats = heartbeats()
        except redis.RedisError as exc:
            raise CommandError(f"cannot read heartbeats: Redis unreachable ({exc})") from exc
        for beat in beats:
            state = "alive" if beat.alive else "stale"
            served = ",".join(beat.queues)
            self.stdout.write(f"{beat.name}: {state}, beat {beat.age:.1f} s ago, serves {served}")
        alive = [beat for beat in beats if beat.alive]
        problems = [f"worker {n} has no live heartbeat" for n in name if n not in _names(alive)]
        problems += [f"no live worker serves {q}" for q in queue if not _serving(alive, q)]
        if not name and not queue and not alive:
            problems.append("no live worker")
        if problems:
            raise CommandError("; ".join(problems))


def _names(beats) -> set[str]:
    return {beat.name for beat in beats}


def _serving(beats, queue: str) -> bool:
    return any(queue in beat.queues for beat in beats)
