"""The orders the harness checks, and a tiny model of what each order must end in.

Events (tuples):
    ("claim", k)        a run_target delivery claims target k (``begin_target``)
    ("finish", k)       the claiming worker finishes target k (``finish_target``)
    ("ifinish", k)      the same, leaving the pass to the worker (``queue_update=False``)
    ("ipass",)          that worker's own pass (``run_exclusively``), claiming the first
                        target it creates for the worker
    ("fpass", k)        the worker's finish of target k made inside its own pass
    ("dup", k)          a duplicate run_target delivery for target k
    ("takeover", k)     the claim's lease expires (its worker stalled) and a redelivered
                        run_target claims target k again
    ("late", k)         the stalled worker finishes with an error after the takeover
    ("msg", k, type)    a pass/fail/work message arrives for target k (``receive_message``)
                        while another process is in a pass (it holds the build's Redis lock
                        and row): its pass is left to that holder (the dirty mark), a later
                        PASS
    ("cmd", command)    an abort/restart command arrives for the build, or "rerun:<key>",
                        likewise
    ("imsg", k, type)   a message whose receiving process then runs the build's pass itself,
                        the build's row free (``update_after_commit``)
    ("icmd", command)   a command, likewise
    PASS                an engine pass (``update_build``)

Canonical orders (how equivalent orders are merged; see ``orders``):
- Consecutive engine passes collapse into one (a pass right after a pass changes nothing:
  that is itself asserted, "one more pass changes nothing"). No pass is placed before the
  first event: the build's start ran its first pass. A final pass always follows the last
  event, so a pass is placed (or not) in each gap *between* two events.
- Between two passes, events of different targets, and commands, commute: a claim, finish
  or message touches only its own target's row and messages, and what they check of the
  build (status, generation) changes only in a pass. So within a segment (the events
  between two passes) events are ordered by chain (target a, then b, then commands),
  keeping each chain's own order. Events of one target are never reordered.
- An ``imsg`` or ``icmd`` carries a pass of its own, so it ends its segment: a segment holds
  at most one, as the last of its chain's events there, and it comes after the segment's
  other events (which commute, as above, up to that pass). The PASS after it collapses
  into its own.
- The two run_target deliveries of a target are interchangeable, so the one that claims is
  called "claim" and the duplicate always comes after it.
"""

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

PASS = ("pass",)
# Events whose process runs the build's pass itself right after them.
WITH_OWN_PASS = {"imsg", "icmd"}
COMPLETE = {"passed", "failed", "aborted"}


def interleavings(first: list, second: list) -> Iterator[list]:
    """Every merge of two sequences keeping each one's order."""
    n = len(first) + len(second)
    for positions in itertools.combinations(range(n), len(first)):
        chosen = set(positions)
        a, b = iter(first), iter(second)
        yield [next(a) if i in chosen else next(b) for i in range(n)]


def target_chains(
    key: str, messages: list[str], duplicate: bool = True, sent_as: str = "msg"
) -> list[list]:
    """Every order of one target's events: claim < finish, claim < duplicate delivery,
    messages (events ``sent_as``: ``msg`` or ``imsg``) in the order given, anywhere
    (before the claim too: an early verdict)."""
    claim, finish, dup = ("claim", key), ("finish", key), ("dup", key)
    workers = [[claim, finish, dup], [claim, dup, finish]] if duplicate else [[claim, finish]]
    sent = [(sent_as, key, m) for m in messages]
    return [order for w in workers for order in interleavings(w, sent)]


def inline_chains(key: str, messages: list[str], sent_as: str = "msg") -> list[list]:
    """A target whose worker runs the build's pass itself: claim < finish without queueing
    an update < that worker's pass (``ipass``); messages (events ``sent_as``) anywhere, and
    the engine's queued passes (the segments' ``pass``) anywhere too, between the finish
    and the worker's pass as well."""
    worker = [("claim", key), ("ifinish", key), ("ipass",)]
    sent = [(sent_as, key, m) for m in messages]
    return list(interleavings(worker, sent))


def fused_chains(key: str, messages: list[str]) -> list[list]:
    """A target whose worker finishes it inside its own pass (``fpass``, the build's lock
    free): claim < that pass; messages anywhere, and the queued passes too."""
    worker = [("claim", key), ("fpass", key)]
    sent = [("msg", key, m) for m in messages]
    return list(interleavings(worker, sent))


def takeover_chains(key: str, messages: list[str]) -> list[list]:
    """A target whose worker stalls past its lease: claim < takeover < both finishes (the
    late one and the current one, in either order); messages anywhere."""
    claim, takeover = ("claim", key), ("takeover", key)
    late, finish = ("late", key), ("finish", key)
    workers = [[claim, takeover, late, finish], [claim, takeover, finish, late]]
    sent = [("msg", key, m) for m in messages]
    return [order for w in workers for order in interleavings(w, sent)]


def segmentations(chains: list[list]) -> Iterator[list[list[list]]]:
    """Every way to cut the chains into segments (separated by engine passes) where each
    segment takes a (possibly empty) prefix of what is left of each chain, and is never
    empty as a whole; a segment is given as its part of each chain."""
    if all(not chain for chain in chains):
        yield []
        return
    for takes in itertools.product(*(range(len(c) + 1) for c in chains)):
        if not any(takes):
            continue
        parts = [chain[:n] for chain, n in zip(chains, takes, strict=True)]
        rest = [chain[n:] for chain, n in zip(chains, takes, strict=True)]
        for tail in segmentations(rest):
            yield [parts, *tail]


def canonical_segment(parts: list[list]) -> list | None:
    """A segment's events in canonical order (chain by chain, an event with its own pass
    last), or None if the segment cannot be canonical: it holds two events with their own
    pass, or one that is not the last of its chain's part (what follows it in that chain
    comes after its pass, so in the next segment)."""
    own = [i for i, part in enumerate(parts) if any(e[0] in WITH_OWN_PASS for e in part)]
    if not own:
        return [event for part in parts for event in part]
    owner = parts[own[0]]
    if len(own) > 1 or any(e[0] in WITH_OWN_PASS for e in owner[:-1]):
        return None
    if owner[-1][0] not in WITH_OWN_PASS:
        return None
    others = [e for i, part in enumerate(parts) for e in (part[:-1] if i == own[0] else part)]
    return [*others, owner[-1]]


def orders(chain_choices: list[list[list]]) -> Iterator[list[tuple]]:
    """Every canonical order: one choice of order per chain, cut into segments joined by
    engine passes, ending with the final pass."""
    seen = set()
    for chains in itertools.product(*chain_choices):
        for segments in segmentations(list(chains)):
            events = [canonical_segment(parts) for parts in segments]
            if None in events:
                continue
            order = []
            for segment in events:
                order.extend(segment)
                order.append(PASS)
            key = tuple(order)
            if key not in seen:
                seen.add(key)
                yield order


@dataclass
class Model:
    """What the serial run of an order must give, written independently of the engine.

    One generation-1 target per key, created ``pending`` by the setup's pass; the build is
    ``building``. Messages go to the generation-1 targets; a restart leaves new
    ``pending`` targets of generation 2 that no event touches. A key in ``retrying`` has
    ``retry: {limit: 1, on: [failed]}``: its first attempt failing gives a second attempt,
    ``pending`` (in ``retried``), which no event touches either.
    """

    keys: list[str]
    retrying: frozenset[str] = frozenset()
    retried: dict[str, str] = field(default_factory=dict)
    build: str = "building"
    generation: int = 1
    targets: dict[str, str] = field(default_factory=dict)
    inbox: dict[str, list[str]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.targets = {k: "pending" for k in self.keys}
        self.inbox = {k: [] for k in self.keys}

    def current(self) -> dict[str, str]:
        """The status of each key's current attempt."""
        return {key: self.retried.get(key, status) for key, status in self.targets.items()}

    @property
    def build_complete(self) -> bool:
        return self.build in {"passed", "failed", "aborted"}

    def claim(self, key: str) -> bool:
        """True if the claim is made (the worker then runs the step)."""
        if self.targets[key] != "pending":
            return False
        if self.build_complete:
            self.targets[key] = "aborted"  # the worker finds the build complete
            return False
        self.targets[key] = "building"
        return True

    def takeover(self, key: str) -> bool:
        """A new claim of a ``building`` target whose lease expired; True if made."""
        return self.targets[key] == "building"

    def finish(self, key: str) -> None:
        """The step ran: the target waits, unless its build completed meanwhile (then no
        verdict could ever settle it, and it is aborted)."""
        if self.targets[key] == "building":
            self.targets[key] = "aborted" if self.build_complete else "waiting"

    def message(self, key: str, kind: str) -> bool:
        """True if the message is accepted (stored), False if refused (409)."""
        if self.targets[key] in COMPLETE:
            return False
        if kind == "work":
            return True
        if self.generation != 1 or self.build_complete:
            return False
        self.inbox[key].append(kind)
        return True

    def command(self, command: str) -> bool:
        if command == "abort" and self.build_complete:
            return False
        if command.startswith("rerun:") and self._rerun_refused(command[6:]):
            return False
        self.commands.append(command)
        return True

    def _rerun_refused(self, key: str) -> bool:
        """A rerun of ``key`` (no step depends on another here) needs its current attempt
        complete and the build building, passed or failed."""
        return (
            self.build not in ("building", "passed", "failed")
            or self.current()[key] not in COMPLETE
            or key in self.retried  # the scenarios rerun a step once
        )

    def engine_pass(self, take: bool = False) -> tuple[int, str] | None:
        """Apply a pass. ``take``: the pass is a finishing worker's own, which claims the
        first target it creates (in plan order) for that worker; return that target's
        ``(generation, key)``, or None. A claimed retry or rerun attempt is ``building``."""
        retried_before, generation_before = dict(self.retried), self.generation
        self._pass()
        if not take or self.build != "building":
            return None
        if self.generation != generation_before:
            return (self.generation, self.keys[0])  # the restart's new targets
        created = [
            key
            for key in self.keys
            if self.retried.get(key) == "pending" and retried_before.get(key) != "pending"
        ]
        if not created:
            return None
        self.retried[created[0]] = "building"
        return (1, created[0])

    def _pass(self) -> None:
        for command in self.commands:
            self._apply(command)
        self.commands = []
        if self.build != "building" or self.generation != 1:
            return
        for key, status in self.targets.items():
            if status == "waiting" and self.inbox[key]:
                self.targets[key] = "passed" if self.inbox[key][0] == "pass" else "failed"
                self.inbox[key] = []
        due = {k for k in self.retrying if self.targets[k] == "failed" and k not in self.retried}
        failed_for_good = {
            k for k, status in self.current().items() if status in ("failed", "aborted")
        } - due
        if not failed_for_good:
            for key in due:
                self.retried[key] = "pending"  # attempt 2, before the build sees the failure
        statuses = set(self.current().values())
        if statuses & {"failed", "aborted"}:
            self.build = "failed"
            # Harbor (beyond Harbormaster) leaves nothing pending or waiting in a failed
            # build; a step still running finishes.
            self._abort_where(("pending", "waiting"))
        elif statuses == {"passed"}:
            self.build = "passed"

    def _apply(self, command: str) -> None:
        if command.startswith("rerun:"):
            key = command[6:]
            if not self._rerun_refused(key):
                # Its attempt is superseded (and so is any aborted one: one key here), a
                # new one is pending, and the build is building again.
                self.retried[key] = "pending"
                self.build = "building"
            return
        if command == "abort" and self.build_complete:
            return
        self._abort_where(("pending", "building", "waiting"))
        if command == "abort":
            self.build = "aborted"
        else:
            self.build, self.generation = "building", self.generation + 1

    def _abort_where(self, statuses: tuple[str, ...]) -> None:
        for attempts in (self.targets, self.retried):
            for key, status in attempts.items():
                if status in statuses:
                    attempts[key] = "aborted"
