"""The rows the benchmark works on, in the bench database (Django set up with bench.settings).

Waiting builds are created by bulk inserts, not through the engine, so 10,000 of them take
seconds: each gets its own buildable (repository ``bench``, commit ``<tag>-<n>``), a build
``building`` in generation 1 with the plan's snapshot, and one target ``waiting`` (attempt 1),
exactly the rows the engine and a target worker leave when a step that waits for a message
has run. Tables are ANALYZEd after each bulk insert, as autovacuum would soon do.
"""

from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import ApiToken, User
from bench.ceilings.models import CeilingCounter
from builds import engine
from builds.models import Build, Buildable, BuildTarget
from builds.plans import import_plan

WAIT_PLAN = {
    "name": "bench-wait",
    "description": "One step that waits for a message (the decision benchmark).",
    "steps": [{"key": "wait", "type": "sleep", "seconds": 0, "wait_for_message": True}],
}
THREE_STEP_PLAN = {
    "name": "bench-three",
    "description": "Three trivial steps in a chain (the builds-per-second benchmark).",
    "steps": [
        {"key": "one", "type": "sleep", "seconds": 0},
        {"key": "two", "type": "sleep", "seconds": 0, "depends_on": ["one"]},
        {"key": "three", "type": "sleep", "seconds": 0, "depends_on": ["two"]},
    ],
}
BATCH = 2000


@dataclass(frozen=True)
class Waiting:
    """A waiting build's target PHID and build id."""

    target_phid: str
    build_id: int

    @property
    def key(self) -> str:
        return f"b:{self.build_id}"


class World:
    """The bench's user and token, its two plans, and counters for the ceiling."""

    def __init__(self):
        user = User.objects.create_user("bench", password=None)
        self.token = ApiToken.issue(user, "bench")[1]
        self.wait_plan = import_plan(WAIT_PLAN)
        self.three_plan = import_plan(THREE_STEP_PLAN)
        self._serial = 0
        self._next_counter = 1

    def waiting_builds(self, count: int, tag: str = "") -> list[Waiting]:
        """Insert ``count`` waiting builds (see the module docstring)."""
        created = []
        for start in range(0, count, BATCH):
            created += self._insert_batch(min(BATCH, count - start), tag)
        analyze()
        return created

    @transaction.atomic
    def _insert_batch(self, count: int, tag: str) -> list[Waiting]:
        now = timezone.now()
        snapshot = self.wait_plan.snapshot()
        step = snapshot[0]
        serials = range(self._serial, self._serial + count)
        self._serial += count
        buildables = Buildable.objects.bulk_create(
            Buildable(repository="bench", commit=f"{tag}-{n}", status=Buildable.Status.BUILDING)
            for n in serials
        )
        builds = Build.objects.bulk_create(
            Build(
                plan=self.wait_plan,
                buildable=b,
                status=Build.Status.BUILDING,
                generation=1,
                plan_snapshot=snapshot,
            )
            for b in buildables
        )
        targets = BuildTarget.objects.bulk_create(
            BuildTarget(
                build=b,
                step_key=step["key"],
                generation=1,
                name=step["name"],
                step_type=step["type"],
                config=step["config"],
                wait_for_message=True,
                status=BuildTarget.Status.WAITING,
                attempt=1,
                date_started=now,
            )
            for b in builds
        )
        return [Waiting(t.phid, t.build_id) for t in targets]

    def counters(self, count: int) -> list[int]:
        """Ids of ``count`` fresh ceiling counters (one per measured decision)."""
        first = self._next_counter
        CeilingCounter.objects.bulk_create(
            CeilingCounter(id=i) for i in range(first, first + count)
        )
        self._next_counter += count
        return list(range(first, first + count))

    def start_three_step_builds(self, count: int) -> list[int]:
        """Start ``count`` builds of the three-step plan through the engine, one buildable
        each, each in a transaction of its own, as separate requests start builds: a
        build's first step is queued as soon as its start commits, while the later ones are
        still being started (as the ceiling's empty tasks run while the bench sends more)."""
        ids = []
        for _ in range(count):
            self._serial += 1
            with transaction.atomic():
                buildable = engine.find_or_create_buildable("bench", commit=f"three-{self._serial}")
                ids.append(engine.start_build(self.three_plan, buildable).pk)
        return ids


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
