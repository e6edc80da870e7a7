"""Harbor's domain data: plans and steps, buildables, builds, targets, and what targets report.

Statuses are stored here but changed only by ``builds.engine`` (docs/design.md §2). Status values
and groups follow Harbormaster (``HarbormasterBuildStatus``, ``HarbormasterBuildTarget``,
``HarbormasterBuildableStatus``; docs/harbormaster.md §1.1–1.3).
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import MD5, Concat, Length, Replace
from django.urls import reverse

from builds import phids


class EngineOwnedRowError(Exception):
    """``save()`` was called on an existing row of an engine-owned model."""


class EngineOwned(models.Model):
    """A model whose rows the engine and the API own: ``save()`` inserts new rows, and an
    existing row changes only by the engine's conditional updates (``builds.engine``).

    Saving an instance writes back every field it read, so an instance read before the
    engine moved the row on would undo the move: a waiting target saved after a ``pass``
    settled it would be waiting again in a passed build, for ever. Hence ``save()`` of a
    row already stored raises EngineOwnedRowError, whatever ``update_fields`` names, and
    an unsaved instance is always inserted, even with an id (IntegrityError if taken).
    """

    class Meta:
        abstract = True

    def save(self, **kwargs) -> None:
        if not self._state.adding:
            raise EngineOwnedRowError(
                f"{type(self).__name__} {self.pk} is changed only by the engine's "
                "conditional updates, not by save()"
            )
        kwargs.setdefault("force_insert", True)
        super().save(**kwargs)


class BuildPlan(models.Model):
    """A named, ordered graph of build steps, imported from YAML (``manage.py importplan``).

    ``behaviors`` holds Harbormaster's plan behaviors: ``restartable`` (always/failed/never)
    and ``affects_buildable`` (always/building/never); absent keys mean ``always``.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"

    phid = phids.phid_field(phids.BUILD_PLAN)
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    behaviors = models.JSONField(default=dict, blank=True)
    auto_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # Users who may run the plan and send messages to its builds and targets; None lets
    # every signed-in user (staff may always). See builds/permissions.py.
    run_group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Forge events that start the plan's builds, as checked at import
    # (builds/plan_triggers.py); matched by forges/triggers.py.
    triggers = models.JSONField(default=list, blank=True)
    # Webhooks told of its builds' events, as checked at import (builds/plan_notify.py);
    # written to the outbox by forges/notifications.py.
    notify = models.JSONField(default=list, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def behavior(self, key: str) -> str:
        """Return the plan's ``key`` behavior, defaulting to Harbormaster's ``always``."""
        return self.behaviors.get(key, "always")

    def snapshot(self) -> list[dict]:
        """The plan's steps as plain dicts, in order: what a build keeps when it starts."""
        return [step.as_snapshot() for step in self.steps.order_by("sequence", "id")]


class BuildPlanVersion(models.Model):
    """One change of a plan, kept whole: the YAML it was imported from, who imported it and
    when. ``number`` counts a plan's versions from 1; a build records the version it started
    from (``Build.plan_version``). Written by ``builds.plan_versions``, never changed."""

    plan = models.ForeignKey(BuildPlan, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    yaml = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plan", "number"], name="unique_plan_version")
        ]
        ordering = ["plan", "-number"]

    def __str__(self) -> str:
        return f"{self.plan.name} v{self.number}"

    def get_absolute_url(self) -> str:
        return reverse("plan-version", args=[self.plan_id, self.number])


class BuildStep(models.Model):
    """One step of a plan: a step type with its config, and the steps it depends on."""

    phid = phids.phid_field(phids.BUILD_STEP)
    plan = models.ForeignKey(BuildPlan, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    step_type = models.CharField(max_length=64)
    config = models.JSONField(default=dict, blank=True)
    depends_on = models.JSONField(default=list, blank=True)
    wait_for_message = models.BooleanField(default=False)
    description = models.TextField(blank=True)
    sequence = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan", "key"], name="unique_step_key")]

    def __str__(self) -> str:
        return f"{self.plan.name}/{self.key}"

    def as_snapshot(self) -> dict:
        """The step as stored in ``Build.plan_snapshot``."""
        return {
            "key": self.key,
            "phid": self.phid,
            "name": self.name,
            "type": self.step_type,
            "config": self.config,
            "depends_on": list(self.depends_on),
            "wait_for_message": self.wait_for_message,
            "description": self.description,
        }


class Buildable(EngineOwned):
    """What is built: a commit or a diff of a repository, or a pull request's head commit.
    Found or created by (repository, commit, diff, revision), so a pull request's buildable
    is its own even when its commit was also pushed to a branch; becomes ``building`` once
    its first build starts."""

    class Status(models.TextChoices):
        PREPARING = "preparing"
        BUILDING = "building"
        PASSED = "passed"
        FAILED = "failed"

    phid = phids.phid_field(phids.BUILDABLE)
    object_phid = models.CharField(max_length=64, blank=True)
    repository = models.CharField(max_length=500, blank=True)
    ref = models.CharField(max_length=255, blank=True)
    commit = models.CharField(max_length=64, blank=True)
    diff = models.CharField(max_length=64, blank=True)
    # A pull (merge) request's number, and the ref it would change (``refs/heads/main``).
    revision = models.CharField(max_length=64, blank=True)
    base_ref = models.CharField(max_length=255, blank=True)
    # For a buildable a forge's webhook made: the forge's name in HARBOR_FORGES and its path
    # of the repository (``acme/widgets``), where its builds report commit statuses.
    forge = models.CharField(max_length=64, blank=True)
    forge_repository = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PREPARING)
    is_manual = models.BooleanField(default=False)
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "commit", "diff", "revision"],
                name="unique_buildable_object",
            )
        ]

    def __str__(self) -> str:
        what = self.commit[:12] or (f"diff {self.diff}" if self.diff else self.ref) or self.phid
        return f"B{self.pk} {what}"

    def get_absolute_url(self) -> str:
        return reverse("buildable-detail", args=[self.pk])


class Build(EngineOwned):
    """One application of a plan to a buildable. ``plan_snapshot`` keeps the steps as they
    were when the build started, so re-importing a plan never changes a running build."""

    class Status(models.TextChoices):
        INACTIVE = "inactive"
        PENDING = "pending"
        BUILDING = "building"
        PAUSED = "paused"
        PASSED = "passed"
        FAILED = "failed"
        ABORTED = "aborted"
        ERROR = "error"
        DEADLOCKED = "deadlocked"

    COMPLETE = frozenset({"passed", "failed", "aborted", "error", "deadlocked"})

    phid = phids.phid_field(phids.BUILD)
    plan = models.ForeignKey(BuildPlan, on_delete=models.PROTECT, related_name="builds")
    buildable = models.ForeignKey(Buildable, on_delete=models.CASCADE, related_name="builds")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    generation = models.PositiveIntegerField(default=0)
    initiator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    parameters = models.JSONField(default=dict, blank=True)
    plan_snapshot = models.JSONField(default=list, blank=True)
    # The plan's version the snapshot was taken from; None for a plan never versioned.
    plan_version = models.ForeignKey(
        BuildPlanVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="builds"
    )
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status", "date_modified"])]

    def __str__(self) -> str:
        return f"Build {self.pk} ({self.plan.name})"

    def get_absolute_url(self) -> str:
        return reverse("build-detail", args=[self.pk])

    @property
    def is_complete(self) -> bool:
        return self.status in self.COMPLETE

    def absolute_url(self) -> str:
        """The build page's URL under ``HARBOR_BASE_URL``."""
        return settings.HARBOR_BASE_URL + self.get_absolute_url()


class BuildTarget(EngineOwned):
    """One run of one step in one generation of a build.

    ``attempt`` counts claims by target workers; ``lease_expires`` is when the current
    claim lapses unless renewed; ``lost_claims`` counts the claims that lapsed while the
    step ran (its worker died or stalled; a yielded step's resumption is not one), so a
    step that keeps losing its worker fails. ``config`` and ``variables`` are snapshots
    taken when the engine creates the target.

    A step runs again in the same generation as a new target, its next ``step_attempt``
    (an automatic retry, or a rerun asked for by a user), so every attempt keeps its own
    logs, messages, unit results and artifacts. The attempt it replaces keeps its status
    and records why it was replaced in ``superseded_by``; the engine reads only the
    attempts not superseded. ``retries`` counts the automatic retries that led to this
    attempt since the step last ran afresh; ``failure`` says how a failed target failed,
    which is what a step's ``retry.on`` matches.
    """

    class Failure(models.TextChoices):
        FAILED = "failed"  # the step failed, or a fail message settled it
        LOST = "lost"  # its worker vanished: the claim's lease lapsed
        TIMEOUT = "timeout"  # a wait or command timeout

    class Supersession(models.TextChoices):
        RETRY = "retry"
        RERUN = "rerun"

    class Status(models.TextChoices):
        PENDING = "pending"
        BUILDING = "building"
        WAITING = "waiting"
        PASSED = "passed"
        FAILED = "failed"
        ABORTED = "aborted"

    COMPLETE = frozenset({"passed", "failed", "aborted"})
    UNDERWAY = frozenset({"pending", "building"})
    FAILED_STATES = frozenset({"failed", "aborted"})

    phid = phids.phid_field(phids.BUILD_TARGET)
    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="targets")
    step_key = models.CharField(max_length=100)
    generation = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    step_type = models.CharField(max_length=64)
    config = models.JSONField(default=dict, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    wait_for_message = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt = models.PositiveIntegerField(default=0)
    lost_claims = models.PositiveIntegerField(default=0)
    lease_expires = models.DateTimeField(null=True, blank=True)
    # Set while the step has yielded (paused to run again later, freeing its worker): the
    # claim's lease is left to lapse then, and the next claim resumes the step quietly.
    resume_after = models.DateTimeField(null=True, blank=True)
    wait_deadline = models.DateTimeField(null=True, blank=True)
    step_attempt = models.PositiveIntegerField(default=1)
    retries = models.PositiveIntegerField(default=0)
    failure = models.CharField(max_length=16, choices=Failure.choices, blank=True)
    superseded_by = models.CharField(max_length=16, choices=Supersession.choices, blank=True)
    # When the target was announced stuck (``target.stuck``, builds/engine/stuck.py): once.
    stuck_notified_at = models.DateTimeField(null=True, blank=True)
    # The concurrency group of its step (``concurrency: {group, limit}``), its name resolved
    # when the target is created; "" for none. A target of a group holds one of the group's
    # slots from ``date_admitted`` (set by the engine under the group's row lock) until it
    # is complete; ``slot_released`` records that a pass has since woken the group's queue.
    concurrency_group = models.CharField(max_length=255, blank=True, default="")
    date_admitted = models.DateTimeField(null=True, blank=True)
    slot_released = models.BooleanField(default=False)
    date_created = models.DateTimeField(auto_now_add=True)
    date_started = models.DateTimeField(null=True, blank=True)
    date_completed = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["build", "step_key", "generation", "step_attempt"],
                name="unique_target_attempt",
            ),
            # One current attempt per step and run: a replayed pass cannot add a second.
            models.UniqueConstraint(
                fields=["build", "step_key", "generation"],
                condition=Q(superseded_by=""),
                name="unique_target_per_generation",
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "lease_expires"],
                name="target_underway_idx",
                condition=Q(status__in=["pending", "building"]),
            ),
            # A group's slot holders and queue: its targets not yet complete.
            models.Index(
                fields=["concurrency_group", "id"],
                name="target_group_unfinished_idx",
                condition=Q(status__in=["pending", "building", "waiting"])
                & ~Q(concurrency_group=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.phid})"

    @property
    def is_complete(self) -> bool:
        return self.status in self.COMPLETE

    @property
    def attempts_allowed(self) -> int | None:
        """How many attempts this run of the step may make with its automatic retries (its
        attempt number less the retries so far, plus ``retry.limit``), or None when the
        step does not retry."""
        retry = self.config.get("retry")
        if not retry:
            return None
        return self.step_attempt - self.retries + int(retry["limit"])


class ConcurrencyGroup(models.Model):
    """One row per concurrency group name ever used: the engine locks it ``FOR UPDATE``
    while it counts and admits the group's targets (``builds.engine.concurrency``), so the
    decisions of passes over different builds about one group take turns."""

    name = models.CharField(max_length=255, unique=True)
    date_created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class BuildMessage(EngineOwned):
    """A message in a receiver's inbox: a verdict (pass/fail/work) for a target, or a command
    (restart/abort/pause/resume, or rerun of ``step_key``) for a build. Consumed only by
    the engine, under the build's row lock. ``build`` is the build the message concerns,
    set for every receiver kind, so one indexed query finds a build's unconsumed
    messages."""

    class Type(models.TextChoices):
        PASS = "pass"
        FAIL = "fail"
        WORK = "work"
        RESTART = "restart"
        ABORT = "abort"
        PAUSE = "pause"
        RESUME = "resume"
        RERUN = "rerun"

    VERDICTS = frozenset({"pass", "fail"})
    TARGET_TYPES = frozenset({"pass", "fail", "work"})
    COMMANDS = frozenset({"restart", "abort", "pause", "resume", "rerun"})

    receiver_phid = models.CharField(max_length=30)
    target = models.ForeignKey(
        BuildTarget, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="messages")
    type = models.CharField(max_length=16, choices=Type.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    is_consumed = models.BooleanField(default=False)
    date_consumed = models.DateTimeField(null=True, blank=True)
    # What consuming it did: e.g. "target passed", or why it had no effect.
    outcome = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # The step a ``rerun`` runs again (with its dependents); empty for every other type.
    step_key = models.CharField(max_length=100, blank=True)
    # The values a person entered deciding an approval (``builds.approvals``), by field name.
    fields = models.JSONField(default=dict, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["receiver_phid", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="unique_message_idempotency_key",
            )
        ]
        indexes = [
            models.Index(
                fields=["build", "id"],
                name="message_unconsumed_idx",
                condition=Q(is_consumed=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} → {self.receiver_phid}"


class StatusEvent(EngineOwned):
    """One status transition of a build, target or buildable: the timeline the UI shows."""

    class Cause(models.TextChoices):
        MESSAGE = "message"
        COMMAND = "command"
        WORKER = "worker"
        TIMEOUT = "timeout"
        REPAIR = "repair"
        ENGINE = "engine"

    build = models.ForeignKey(
        Build, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    target = models.ForeignKey(
        BuildTarget, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    buildable = models.ForeignKey(
        Buildable, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    message = models.ForeignKey(BuildMessage, null=True, blank=True, on_delete=models.SET_NULL)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    cause = models.CharField(max_length=16, choices=Cause.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    detail = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    @property
    def subject(self) -> str:
        if self.target_id:
            return "target"
        return "build" if self.build_id else "buildable"


def unit_test_key() -> MD5:
    """An expression naming one unit test across builds: the MD5 (32 hex digits) of its
    namespace, U+001F and its name. Indexed as such, because a name may be far longer than
    a B-tree entry can hold (``builds.test_history`` computes the same in Python)."""
    separator = Value("\x1f", output_field=models.TextField())
    return MD5(Concat("namespace", separator, "name", output_field=models.TextField()))


class UnitResult(EngineOwned):
    """A unit test result reported for a target (Harbormaster's unit message,
    docs/harbormaster.md §2.3)."""

    class Result(models.TextChoices):
        PASS = "pass"
        FAIL = "fail"
        SKIP = "skip"
        BROKEN = "broken"
        UNSOUND = "unsound"

    target = models.ForeignKey(BuildTarget, on_delete=models.CASCADE, related_name="unit_results")
    message = models.ForeignKey(BuildMessage, null=True, blank=True, on_delete=models.SET_NULL)
    name = models.TextField()
    namespace = models.TextField(blank=True)
    engine = models.CharField(max_length=255, blank=True)
    result = models.CharField(max_length=16, choices=Result.choices)
    duration = models.FloatField(null=True, blank=True)
    path = models.TextField(blank=True)
    details = models.TextField(blank=True)
    format = models.CharField(max_length=16, default="text")
    coverage = models.JSONField(null=True, blank=True)

    class Meta:
        # A target's newest unit result in one index probe: the build page's live version
        # (builds.queries.live_versions) asks for it on every poll, however many there are.
        # One test's results in the targets of given builds (the previous build on the ref,
        # the builds of one commit, a plan's history) by index probes, at any table size.
        indexes = [
            models.Index(fields=["target", "-id"], name="unit_result_target_newest"),
            models.Index(unit_test_key(), F("target"), name="unit_result_test_target"),
            # A plan's recent failures without reading its passes (they are most rows).
            models.Index(
                fields=["target"],
                condition=Q(result__in=["fail", "broken", "unsound"]),
                name="unit_result_target_failing",
            ),
        ]


class LintMessage(EngineOwned):
    """A lint message reported for a target (Harbormaster's lint message,
    docs/harbormaster.md §2.3)."""

    class Severity(models.TextChoices):
        ADVICE = "advice"
        AUTOFIX = "autofix"
        WARNING = "warning"
        ERROR = "error"
        DISABLED = "disabled"

    target = models.ForeignKey(BuildTarget, on_delete=models.CASCADE, related_name="lint_messages")
    message = models.ForeignKey(BuildMessage, null=True, blank=True, on_delete=models.SET_NULL)
    path = models.TextField()
    line = models.IntegerField(null=True, blank=True)
    char = models.IntegerField(null=True, blank=True)
    code = models.CharField(max_length=128)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)


class BuildLog(EngineOwned):
    """A target's log (e.g. source ``http``, type ``body``), appended in chunks while live."""

    target = models.ForeignKey(BuildTarget, on_delete=models.CASCADE, related_name="logs")
    source = models.CharField(max_length=500)
    log_type = models.CharField(max_length=64)
    is_live = models.BooleanField(default=True)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    @property
    def text(self) -> str:
        return "".join(chunk.text for chunk in self.chunks.all())


class BuildLogChunk(EngineOwned):
    """One appended piece of a build log. ``newlines`` (computed by PostgreSQL) counts its
    line breaks, so the log viewer finds line N, and numbers the lines it shows, from the
    chunks' sizes alone without reading the text before them."""

    log = models.ForeignKey(BuildLog, on_delete=models.CASCADE, related_name="chunks")
    text = models.TextField()
    newlines = models.GeneratedField(
        expression=Length("text") - Length(Replace("text", Value("\n"), Value(""))),
        output_field=models.IntegerField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["id"]


class Artifact(EngineOwned):
    """Something a target produced: a ``uri`` or a ``file``. Keys are unique per build and
    generation, so a restarted build can produce the same keys again
    (docs/harbormaster.md §1.10)."""

    class Type(models.TextChoices):
        URI = "uri"
        FILE = "file"

    phid = phids.phid_field(phids.ARTIFACT)
    target = models.ForeignKey(BuildTarget, on_delete=models.CASCADE, related_name="artifacts")
    build = models.ForeignKey(Build, on_delete=models.CASCADE, related_name="artifacts")
    generation = models.PositiveIntegerField()
    key = models.CharField(max_length=255)
    artifact_type = models.CharField(max_length=16, choices=Type.choices)
    data = models.JSONField(default=dict)
    date_created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["build", "generation", "key"], name="unique_artifact_key"
            )
        ]
