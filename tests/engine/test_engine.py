"""The engine's decisions, event by event, in one process against real PostgreSQL."""

import pytest
from django.utils import timezone

from builds import engine, logs
from builds.models import BuildLog, BuildMessage, BuildTarget, StatusEvent
from tests.engine.conftest import waiting_step

pytestmark = pytest.mark.django_db


def test_the_first_pass_starts_generation_one_and_creates_independent_targets(start):
    driver = start([waiting_step("a"), waiting_step("b"), waiting_step("c", depends_on=["a"])])
    build = driver.refresh()
    assert (build.status, build.generation) == ("building", 1)
    assert set(build.targets.values_list("step_key", flat=True)) == {"a", "b"}
    assert driver.target("a").status == "pending"


def test_a_pass_message_moves_a_waiting_target_and_the_build_passes(start):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    assert driver.target("ci").status == "waiting"
    driver.send("ci", "pass")
    driver.update()
    assert driver.target("ci").status == "passed"
    assert driver.refresh().status == "passed"


def test_a_fail_message_fails_the_build(start):
    driver = start([waiting_step("ci"), waiting_step("other")])
    driver.run("ci")
    driver.send("ci", "fail")
    driver.update()
    assert driver.target("ci").status == "failed"
    assert driver.refresh().status == "failed"


def test_it_consumes_a_message_that_arrived_before_the_target_waited(start):
    driver = start([waiting_step("ci")])
    claim = driver.claim("ci")
    driver.send("ci", "pass")  # the outside system answers while the step still runs
    driver.update()
    assert driver.target("ci").status == "building"
    engine.finish_target(claim)
    driver.update()
    assert driver.target("ci").status == "passed"
    assert driver.refresh().status == "passed"


def test_the_first_received_verdict_wins_and_later_ones_are_consumed_without_effect(start):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    first = driver.send("ci", "fail").message
    later = driver.send("ci", "pass").message
    driver.update()
    first.refresh_from_db()
    later.refresh_from_db()
    assert driver.target("ci").status == "failed"
    assert first.is_consumed and first.outcome == "target failed"
    assert later.is_consumed and later.outcome.startswith("no effect")


def test_work_messages_are_never_consumed_and_change_nothing(start):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    work = driver.send("ci", "work", unit=[{"name": "t", "result": "pass"}]).message
    driver.update()
    work.refresh_from_db()
    assert not work.is_consumed
    assert driver.target("ci").status == "waiting"
    assert driver.target("ci").unit_results.count() == 1


def test_a_work_message_wakes_no_pass_and_a_verdict_does(
    start, monkeypatch, django_capture_on_commit_callbacks
):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    passes = []
    monkeypatch.setattr("builds.engine.updates._pass_or_hand_on", passes.append)
    monkeypatch.setattr("builds.engine.dispatch.request_update", passes.append)
    events = StatusEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        driver.send("ci", "work", unit=[{"name": "t", "result": "pass"}])
    assert passes == []
    # What the pass it would have woken does: nothing (no move, no event).
    driver.update()
    assert driver.target("ci").status == "waiting"
    assert StatusEvent.objects.count() == events
    with django_capture_on_commit_callbacks(execute=True):
        driver.send("ci", "pass")
    assert passes == [driver.build.pk]


def test_one_more_pass_at_quiescence_changes_nothing(start):
    driver = start([waiting_step("a"), waiting_step("b", depends_on=["a"])])
    driver.run("a")
    driver.send("a", "pass")
    driver.update()
    driver.run("b")
    driver.send("b", "pass")
    driver.update()
    events = StatusEvent.objects.count()
    snapshot = list(BuildTarget.objects.values_list("pk", "status", "attempt"))
    driver.update()
    assert driver.refresh().status == "passed"
    assert StatusEvent.objects.count() == events
    assert list(BuildTarget.objects.values_list("pk", "status", "attempt")) == snapshot


def test_a_dependent_step_starts_only_after_its_dependency_completes(start):
    driver = start([{"key": "a", "step_type": "sleep"}, {"key": "b", "depends_on": ["a"]}])
    assert not BuildTarget.objects.filter(step_key="b").exists()
    driver.run("a")
    driver.update()
    assert driver.target("b").status == "pending"


def test_a_step_whose_dependency_can_never_complete_deadlocks_the_build(start):
    driver = start([{"key": "a", "depends_on": ["b"]}, {"key": "b", "depends_on": ["a"]}])
    assert driver.refresh().status == "deadlocked"


def test_a_plan_without_steps_passes_at_once(start):
    assert start([]).refresh().status == "passed"


def test_a_worker_whose_claim_was_taken_over_cannot_finish_the_target(start, settings):
    settings.HARBOR_TARGET_LEASE = -1  # every lease is already expired
    driver = start([waiting_step("ci")])
    stale = driver.claim("ci")
    current = driver.claim("ci")
    assert (stale.attempt, current.attempt) == (1, 2)
    assert not engine.finish_target(stale, error="late failure")
    assert driver.target("ci").status == "building"
    assert engine.finish_target(current)
    assert driver.target("ci").status == "waiting"


def test_a_late_finish_says_on_the_targets_log_that_its_result_was_discarded(start, settings):
    settings.HARBOR_TARGET_LEASE = -1  # every lease is already expired
    driver = start([waiting_step("ci")])
    stale = driver.claim("ci")
    driver.claim("ci")
    assert not engine.finish_target(stale, error="late failure")
    log = BuildLog.objects.get(target=driver.target("ci"), log_type="discarded")
    assert "".join(logs.iter_text(log)) == (
        "Attempt 1 finished (failed: late failure), but its claim was no longer current: "
        "the target is building, on attempt 2. This result was discarded."
    )


def test_a_target_is_not_claimed_twice_while_its_lease_holds(start):
    driver = start([waiting_step("ci")])
    assert driver.claim("ci") is not None
    assert driver.claim("ci") is None
    assert driver.target("ci").attempt == 1


def test_a_target_of_an_older_generation_is_aborted_not_run(start):
    driver = start([waiting_step("ci")])
    old = driver.target("ci")
    driver.command("restart")
    driver.update()
    assert engine.begin_target(old.pk) is None
    old.refresh_from_db()
    assert old.status == "aborted"
    assert driver.target("ci").generation == 2


def test_an_abort_moves_unfinished_targets_to_aborted(start):
    driver = start([waiting_step("a"), waiting_step("b")])
    driver.run("a")
    driver.command("abort")
    driver.update()
    assert driver.refresh().status == "aborted"
    assert set(BuildTarget.objects.values_list("status", flat=True)) == {"aborted"}


def test_a_pause_holds_messages_until_resume_applies_them(start):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    driver.command("pause")
    driver.update()
    message = driver.send("ci", "pass").message
    driver.update()
    message.refresh_from_db()
    assert driver.refresh().status == "paused" and not message.is_consumed
    driver.command("resume")
    driver.update()
    assert driver.refresh().status == "passed"


def test_commands_apply_in_order_so_an_abort_does_not_vanish_behind_a_pause(start):
    driver = start([waiting_step("ci")])
    driver.command("abort")
    # Sent while the abort is still unconsumed: can-apply passes at send time.
    BuildMessage.objects.create(receiver_phid=driver.build.phid, build=driver.build, type="pause")
    assert engine.derived_status(driver.refresh()) == "aborting"
    driver.update()
    assert driver.refresh().status == "aborted"
    assert BuildMessage.objects.filter(type="pause", outcome__startswith="no effect").exists()


def test_a_bug_in_a_pass_sets_the_build_to_error_and_is_reraised(start, monkeypatch):
    driver = start([waiting_step("ci")])

    def broken(*args, **kwargs):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr("builds.engine.passes.classify_steps", broken)
    with pytest.raises(ZeroDivisionError):
        driver.update()
    assert driver.refresh().status == "error"


def test_every_transition_is_on_the_timeline(start):
    driver = start([waiting_step("ci")])
    driver.run("ci")
    driver.send("ci", "pass")
    driver.update()
    target_moves = list(
        StatusEvent.objects.filter(target__isnull=False).values_list("from_status", "to_status")
    )
    assert target_moves == [
        ("", "pending"),
        ("pending", "building"),
        ("building", "waiting"),
        ("waiting", "passed"),
    ]
    build_moves = list(
        StatusEvent.objects.filter(target__isnull=True, build__isnull=False).values_list(
            "from_status", "to_status"
        )
    )
    assert build_moves == [("", "pending"), ("pending", "building"), ("building", "passed")]


def test_a_yielded_step_frees_its_claim_and_resumes_quietly_when_its_time_comes(start):
    driver = start([waiting_step("ci")])
    claim = driver.claim("ci")
    assert engine.postpone_target(claim, 60)
    target = driver.target("ci")
    assert target.status == "building" and target.resume_after == target.lease_expires
    assert driver.claim("ci") is None  # not before its time
    BuildTarget.objects.filter(pk=target.pk).update(lease_expires=timezone.now())
    events = StatusEvent.objects.filter(target=target).count()
    resumed = driver.claim("ci")
    assert resumed.attempt == 2 and resumed.target.resume_after is None
    assert StatusEvent.objects.filter(target=target).count() == events
    assert not engine.postpone_target(claim, 1)  # the old claim is no longer current


def test_a_target_whose_worker_keeps_dying_is_failed_not_run_for_ever(start, settings):
    settings.HARBOR_TARGET_LEASE = -1  # every claim lapses at once, as if its worker died
    settings.HARBOR_TARGET_MAX_LOST = 2
    driver = start([waiting_step("ci")])
    claims = [driver.claim("ci") for _ in range(3)]
    assert [c.attempt for c in claims] == [1, 2, 3]
    assert driver.claim("ci") is None
    target = driver.target("ci")
    assert target.status == "failed"
    assert "lost its worker 3 times" in target.logs.get(log_type="error").text
    driver.update()
    assert driver.refresh().status == "failed"


def test_an_event_that_reads_like_a_lost_claim_does_not_count_towards_giving_up(start, settings):
    settings.HARBOR_TARGET_LEASE = -1  # every claim lapses at once, as if its worker died
    settings.HARBOR_TARGET_MAX_LOST = 1
    driver = start([waiting_step("ci")])
    assert driver.claim("ci").attempt == 1
    target = driver.target("ci")
    detail = "claimed again: a note that only reads like a lost claim"
    StatusEvent(target=target, to_status="building", cause="worker", detail=detail).save()
    assert driver.claim("ci").attempt == 2  # one claim was lost, not two
    assert driver.claim("ci") is None  # the second lost claim gives up
    assert driver.target("ci").status == "failed"


def test_a_lost_claim_counts_towards_giving_up_whatever_its_event_says(start, settings):
    settings.HARBOR_TARGET_LEASE = -1
    settings.HARBOR_TARGET_MAX_LOST = 1
    driver = start([waiting_step("ci")])
    driver.claim("ci")
    assert driver.claim("ci").attempt == 2
    StatusEvent.objects.filter(target=driver.target("ci")).update(detail="reworded")
    assert driver.claim("ci") is None
    assert driver.target("ci").status == "failed"


def test_a_failed_build_leaves_no_target_pending_or_waiting_but_lets_running_ones_finish(start):
    steps = [
        waiting_step("a"),
        waiting_step("b"),
        waiting_step("c"),
        waiting_step("d", depends_on=["c"]),
    ]
    driver = start(steps)
    driver.run("a")
    running_c = driver.claim("c")
    driver.run("b")
    driver.send("a", "fail")
    driver.update()
    assert driver.refresh().status == "failed"
    assert driver.target("b").status == "aborted"
    assert driver.target("c").status == "building"
    engine.finish_target(running_c, error="its own failure")
    assert driver.target("c").status == "failed"


def test_an_early_verdict_for_a_step_that_then_fails_is_consumed_without_effect(start):
    driver = start([waiting_step("ci")])
    claim = driver.claim("ci")
    early = driver.send("ci", "pass").message
    engine.finish_target(claim, error="the step crashed")
    driver.update()
    early.refresh_from_db()
    assert early.is_consumed and early.outcome == "no effect: the target was already failed"
    assert driver.refresh().status == "failed"
