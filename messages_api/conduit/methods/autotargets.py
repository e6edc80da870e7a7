"""``harbormaster.queryautotargets``: the targets ``arc diff`` reports lint and unit results
to (``HarbormasterTargetEngine``, docs/harbormaster.md §4 "Autotargets", §2.7).

The autoplan ``arcanist`` ("arc lint + arc unit") has the steps ``arcanist.lint`` and
``arcanist.unit``, which do nothing and wait for a message. For an object and a list of
step keys: find or create the autoplan and the object's non-manual buildable; if the
buildable has no build of the autoplan yet, start one and run its first engine pass here, so
the targets exist when the call returns (workers then run them to ``waiting``). Repeated
calls return the same targets.
"""

import re

from django.db import IntegrityError, transaction

from builds import engine, phids
from builds.models import Build, Buildable, BuildPlan, BuildStep, BuildTarget
from builds.numbers import ascii_int
from messages_api.conduit.errors import CoreError
from messages_api.conduit.params import get_typed, missing
from messages_api.conduit.registry import Call, conduit_method

AUTO_KEY = "arcanist"
AUTOPLAN_NAME = "arc lint + arc unit"
# Step key -> name. The ``sleep`` step with 0 seconds does nothing; waiting makes the target
# wait for arc's message.
AUTOSTEPS = {"arcanist.lint": "Arcanist Lint Results", "arcanist.unit": "Arcanist Unit Results"}
MONOGRAM = re.compile(r"^B([1-9][0-9]*)$")
# The objects arc builds: diffs and commits, kept on the buildable as its object PHID.
OBJECT_FIELDS = {"DIFF": "diff", "CMIT": "commit"}


@conduit_method(
    "harbormaster.queryautotargets",
    "Load or create build autotargets (`arcanist.lint`, `arcanist.unit`) for an object: a "
    "diff or commit PHID, or a Harbor buildable (PHID or monogram).",
    params={"objectPHID": "required phid", "targetKeys": "required list<string>"},
    returns="map<string, phid>",
)
def queryautotargets(call: Call) -> dict:
    """Return ``{"targetMap": {step key: target PHID}}`` in request order. Raises CoreError
    for an object that is not buildable or a key no autostep provides."""
    absent = [key for key in ("objectPHID", "targetKeys") if key not in call.params]
    if absent:
        raise missing(absent)
    object_name = get_typed(call.params, "objectPHID", "phid")
    keys = get_typed(call.params, "targetKeys", "list<string>")
    for key in keys:
        if key not in AUTOSTEPS:
            raise CoreError(f'No build step provides autotarget "{key}"!')
    if not keys:
        return {"targetMap": {}}
    buildable = _buildable_for(object_name)
    build = _autobuild(ensure_autoplan(), buildable, call.user)
    targets = BuildTarget.objects.filter(build=build, generation=build.generation)
    by_key = {target.step_key: target.phid for target in targets}
    return {"targetMap": {key: by_key.get(key) for key in keys}}


def ensure_autoplan() -> BuildPlan:
    """The ``arcanist`` autoplan with its two steps, created on first use."""
    plan = BuildPlan.objects.filter(auto_key=AUTO_KEY).first()
    if plan is not None:
        return plan
    try:
        with transaction.atomic():
            plan = BuildPlan.objects.create(
                name=AUTOPLAN_NAME,
                auto_key=AUTO_KEY,
                description="Lint and unit results reported by arc diff.",
            )
            for sequence, (key, name) in enumerate(AUTOSTEPS.items()):
                BuildStep.objects.create(
                    plan=plan,
                    key=key,
                    name=name,
                    step_type="sleep",
                    config={"seconds": 0},
                    wait_for_message=True,
                    sequence=sequence,
                )
            return plan
    except IntegrityError:  # created concurrently by another call
        return BuildPlan.objects.get(auto_key=AUTO_KEY)


def _buildable_for(name: str) -> Buildable:
    match = MONOGRAM.match(name)
    kind = phids.phid_type(name)
    if match or kind == phids.BUILDABLE:
        # ascii_int is None (no buildable) for more digits than int() converts.
        lookup = {"pk": ascii_int(match.group(1))} if match else {"phid": name}
        buildable = Buildable.objects.filter(**lookup).first()
        if buildable is None:
            raise CoreError(f'No such object "{name}" exists.')
        return buildable
    if kind not in OBJECT_FIELDS:
        raise CoreError(
            f'Object "{name}" is not a buildable object: give a diff (PHID-DIFF-…) or commit '
            "(PHID-CMIT-…) PHID, or a Harbor buildable."
        )
    existing = Buildable.objects.filter(object_phid=name).order_by("pk").first()
    if existing is not None:
        return existing
    return engine.find_or_create_buildable(
        repository="", object_phid=name, is_manual=False, **{OBJECT_FIELDS[kind]: name}
    )


def _autobuild(plan: BuildPlan, buildable: Buildable, user) -> Build:
    """The buildable's build of the autoplan, started (and given its first pass) if there
    is none. The buildable's row lock makes concurrent calls agree on one build."""
    with transaction.atomic():
        Buildable.objects.select_for_update(no_key=True).filter(pk=buildable.pk).first()
        build = Build.objects.filter(buildable=buildable, plan=plan).order_by("pk").first()
        if build is not None:
            return build
        # Harbormaster applies the autoplan in-process so the targets exist on return: the
        # start runs the first pass, which creates them (the autoplan has no concurrency
        # group, whose plans queue that pass).
        return engine.start_build(plan, buildable, initiator=user)
