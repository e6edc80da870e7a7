"""A stress run: many builds of waiting targets, messages sent from many threads at random
moments, real Celery workers deciding. Used by test_stress.py and bench/soak.py.

Each target gets one decisive verdict (pass, or for about a fifth of the builds a fail on
one target), sent once, sometimes again with the same idempotency key (a duplicate), again
without a key, and sometimes with a ``work`` message; a sender thread sends each message as
soon as its target exists, after a random delay of up to ``max_delay`` seconds, so some
arrive while the target is still pending or building. Half the messages go through the live
REST API, half through ``engine.receive_message`` in the sender thread.

Expected: a build fails if one of its targets got a fail, else passes; every accepted
verdict for a target that still waits is consumed.
"""

import json
import os
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from django.db import connection

from builds import engine
from builds.models import Build, BuildMessage, BuildTarget, StatusEvent
from tests.conftest import make_plan


@dataclass
class Job:
    """One message to send to one target of one build."""

    build_id: int
    step_key: str
    kind: str
    idempotency_key: str | None
    via: str  # "rest" or "engine"
    status: int | None = None


@dataclass
class StressResult:
    builds: int
    messages: int
    accepted: int
    duplicates: int
    refused: int
    lost: int
    stuck: int
    wrong: int
    seconds: float
    statuses: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "statuses"} | {
            "statuses": dict(self.statuses)
        }


class StressRun:
    """Start ``count`` builds (two or three waiting targets each) and message them."""

    def __init__(
        self,
        buildable,
        sender,
        count: int,
        threads: int = 16,
        seed: int = 7,
        max_delay: float = 0.3,
    ):
        self.buildable = buildable
        self.sender = sender
        self.count = count
        self.threads = threads
        self.random = random.Random(seed)
        self.max_delay = max_delay
        self.jobs: list[Job] = []
        self.expected: dict[int, str] = {}
        self.queue: queue.Queue = queue.Queue()

    def plans(self):
        def step(key, seconds):
            return {
                "key": key,
                "step_type": "sleep",
                "wait_for_message": True,
                "config": {"seconds": seconds},
            }

        two = make_plan(f"stress-two-{id(self)}", [step("a", 0), step("b", 0.2)])
        three = make_plan(f"stress-three-{id(self)}", [step("a", 0), step("b", 0.2), step("c", 0)])
        return [(two, ["a", "b"]), (three, ["a", "b", "c"])]

    def start(self) -> None:
        plans = self.plans()
        for i in range(self.count):
            plan, keys = plans[i % 2]
            build = engine.start_build(plan, self.buildable)
            failing = keys[self.random.randrange(len(keys))] if self.random.random() < 0.2 else None
            self.expected[build.pk] = "failed" if failing else "passed"
            for key in keys:
                self._plan_messages(build.pk, key, "fail" if key == failing else "pass")
        self.random.shuffle(self.jobs)

    def _plan_messages(self, build_id: int, key: str, verdict: str) -> None:
        idem = f"{build_id}-{key}"
        kinds = [(verdict, idem)]
        if self.random.random() < 0.3:
            kinds.append((verdict, idem))  # same key: a duplicate
        if self.random.random() < 0.3:
            kinds.append((verdict, None))  # no key: a second verdict, no effect
        if self.random.random() < 0.3:
            kinds.append(("work", None))
        for kind, key_ in kinds:
            via = self.random.choice(["rest", "engine"])
            self.jobs.append(Job(build_id, key, kind, key_, via))

    def run(self, timeout: float = 150) -> StressResult:
        began = time.monotonic()
        self.start()
        senders = [
            threading.Thread(target=self._send_loop, daemon=True) for _ in range(self.threads)
        ]
        for thread in senders:
            thread.start()
        self._dispatch_jobs(deadline=began + timeout)
        for _ in senders:
            self.queue.put(None)
        for thread in senders:
            thread.join(60)
        stuck = self._wait_complete(deadline=began + timeout)
        return self._result(stuck, time.monotonic() - began)

    def _dispatch_jobs(self, deadline: float) -> None:
        """Hand each job to the senders once its target exists (one query per round)."""
        pending = list(self.jobs)
        while pending and time.monotonic() < deadline:
            phids = {
                (b, k): p
                for b, k, p in BuildTarget.objects.filter(
                    build_id__in=self.expected, generation=1
                ).values_list("build_id", "step_key", "phid")
            }
            waiting = []
            for job in pending:
                phid = phids.get((job.build_id, job.step_key))
                if phid:
                    self.queue.put((job, phid, self.random.random() * self.max_delay))
                else:
                    waiting.append(job)
            pending = waiting
            time.sleep(0.05)
        assert not pending, f"{len(pending)} messages never had a target to go to"

    def _send_loop(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                job, phid, delay = item
                time.sleep(delay)
                job.status = self._send(job, phid)
        finally:
            connection.close()

    def _send(self, job: Job, phid: str) -> int:
        if job.via == "rest":
            fields = {"idempotency_key": job.idempotency_key} if job.idempotency_key else {}
            return self.sender.post(phid, job.kind, **fields).status_code
        try:
            receipt = engine.receive_message(phid, job.kind, idempotency_key=job.idempotency_key)
        except engine.MessageRefused:
            return 409
        return 202 if receipt.created else 200

    def _wait_complete(self, deadline: float) -> int:
        while time.monotonic() < deadline:
            left = Build.objects.filter(pk__in=self.expected).exclude(status__in=Build.COMPLETE)
            if not left.exists():
                return 0
            time.sleep(0.2)
        return left.count()

    def _result(self, stuck: int, seconds: float) -> StressResult:
        statuses = dict(Build.objects.filter(pk__in=self.expected).values_list("pk", "status"))
        wrong = sum(1 for pk, status in statuses.items() if status != self.expected[pk])
        codes = Counter(job.status for job in self.jobs)
        return StressResult(
            builds=self.count,
            messages=len(self.jobs),
            accepted=codes[202],
            duplicates=codes[200],
            refused=codes[409],
            lost=self.lost_messages(),
            stuck=stuck,
            wrong=wrong,
            seconds=round(seconds, 1),
            statuses=Counter(statuses.values()),
        )

    def lost_messages(self) -> int:
        """Accepted verdicts still unconsumed for a waiting current-generation target,
        plus targets of passing builds that did not pass."""
        unconsumed = BuildMessage.objects.filter(
            build_id__in=self.expected,
            is_consumed=False,
            type__in=BuildMessage.VERDICTS,
            target__status=BuildTarget.Status.WAITING,
        ).count()
        passing = [pk for pk, status in self.expected.items() if status == "passed"]
        unpassed = BuildTarget.objects.filter(build_id__in=passing).exclude(status="passed")
        return unconsumed + unpassed.count()

    def settled_more_than_once(self) -> int:
        counts = Counter(
            StatusEvent.objects.filter(
                build_id__in=self.expected,
                target__isnull=False,
                to_status__in=BuildTarget.COMPLETE,
            ).values_list("target_id", flat=True)
        )
        return sum(1 for n in counts.values() if n > 1)


def write_report(result: StressResult, extra: dict) -> None:
    """Write the figures to ``$HARBOR_STRESS_REPORT`` as JSON when it is set (bench/soak.py)."""
    path = os.environ.get("HARBOR_STRESS_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(result.as_dict() | extra, f)
