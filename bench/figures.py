"""The benchmark's measurements and its report (driven by bench/perf.py, Django set up)."""

import re
import statistics
import time
from contextlib import contextmanager
from unittest import mock

import redis
from celery import current_app
from django.db import connection
from django.test import Client as DjangoClient
from django.test.utils import CaptureQueriesContext

from bench import harness, load, perf
from bench.load import Latencies, send_and_time, wrk
from bench.world import THREE_STEP_PLAN, Waiting, World
from builds import engine
from builds.engine import dispatch
from builds.models import Build, Buildable, BuildTarget
from harbor import named_reads

SENDMESSAGE = "/api/v1/sendmessage"
VERDICT_TARGETS = 6000  # more than 8 wrk clients post in perf.WRK_SECONDS on this stack
CEILING = "/bench/ceiling/message"


def config() -> dict:
    return {
        "gunicorn_workers": harness.GUNICORN_WORKERS,
        "engine_concurrency": harness.ENGINE_CONCURRENCY,
        "targets_concurrency": harness.TARGET_CONCURRENCY,
        "load_before": harness.load_average(),
    }


def _lat(result: Latencies) -> dict:
    return {
        "p50_ms": result.p50,
        "p99_ms": result.p99,
        "n": len(result.values),
        "missing": result.missing,
        "refused": result.refused,
        "send_rate": result.send_rate,
        "decision_rate": result.decision_rate,
        "first_third_p50_ms": result.first_third_p50,
        "last_third_p50_ms": result.last_third_p50,
        "backlog_growing": result.backlog_growing,
    }


def _tp(result: load.Throughput) -> dict:
    return vars(result)


# Counts of what went wrong: a round's are never hidden by a median.
PROBLEM_COUNTS = frozenset({"missing", "refused", "wrong_status", "errors"})


def median_of(results: list[dict]) -> dict:
    """``results`` (dicts of one shape, one per round) as one: each number the median of its
    rounds', recursively; a count of problems (``PROBLEM_COUNTS``) the largest and a flag
    set if any round's is; anything else as the first round has it."""
    out = {}
    for key, first in results[0].items():
        values = [result[key] for result in results]
        if isinstance(first, dict):
            out[key] = median_of(values)
        elif isinstance(first, bool):
            out[key] = any(values)
        elif key in PROBLEM_COUNTS:
            out[key] = max(values)
        elif isinstance(first, int | float):
            out[key] = statistics.median(values)
        else:
            out[key] = first
    return out


def goal_ratios(ceiling: dict, harbor: dict) -> dict[str, float]:
    """The ratios the hot path's goals are set on, for one round (or the medians): sendmessage
    at 8 clients, decision p50 at the low rate (× the ceiling's), sustained decisions/s,
    builds/s of the three-step chain against empty tasks/s ÷ 7."""
    return {
        "sendmessage, 8 clients": harbor["throughput_8"]["rate"] / ceiling["throughput_8"]["rate"],
        "decision p50 (×)": harbor["latency_low"]["p50_ms"] / ceiling["latency_low"]["p50_ms"],
        "decisions/s sustained": harbor["sustained_rate"] / (ceiling["sustained_rate"] or 1),
        "builds/s, 3 steps": harbor["builds_per_s"]["builds_per_s"]
        / (ceiling["empty_task"]["tasks_per_s"] / 7),
    }


# --- Ceilings --------------------------------------------------------------------------------


def measure_ceilings(world: World, listener) -> dict:
    """The three ceilings: lock-and-update latency and sustained rate, an empty task's round
    trip, and insert-and-enqueue throughput (last: it leaves the workers a backlog)."""
    out = {}

    def jobs(count: int):
        return [(CEILING, {"counter": c, "type": "pass"}, f"c:{c}") for c in world.counters(count)]

    out["latency_low"] = _lat(send_and_time(listener, jobs(perf.LOW_COUNT), perf.LOW_RATE, 1))
    harness.wait_quiet()
    out.update(_sustained(listener, jobs))
    out["empty_task"] = _empty_task_round_trip()
    bodies = [{"counter": c, "type": "work"} for c in world.counters(100)]
    for clients in (8, 32):
        out[f"throughput_{clients}"] = _tp(wrk(CEILING, bodies, clients, perf.WRK_SECONDS))
        harness.wait_quiet(settle=1)
    return out


def _sustained(listener, jobs, token: str = "") -> dict:
    """Saturate with closed-loop clients, then find the highest open-loop rate (a fraction of
    the saturated decision rate) whose latency does not keep growing. ``token`` authenticates
    Harbor's endpoint; the ceiling's needs none."""
    saturated = send_and_time(listener, jobs(perf.SATURATE_COUNT), None, 8, token)
    harness.wait_quiet()

    def run_at(rate: float) -> Latencies:
        result = send_and_time(listener, jobs(int(rate * perf.SUSTAIN_SECONDS)), rate, 8, token)
        harness.wait_quiet()
        return result

    rate, at_rate = load.find_sustained(run_at, saturated.decision_rate, perf.SUSTAIN_TRIES)
    return {
        "saturated": _lat(saturated),
        "sustained_rate": rate if at_rate.sustained else 0.0,
        "latency_sustained": _lat(at_rate),
    }


def _empty_task_round_trip() -> dict:
    """Round trip of ``bench.ceilings.tasks.empty`` (send, and see its RPUSH by BLPOP) at
    ``perf.LOW_RATE``, and the throughput of ``perf.EMPTY_TASKS`` of them sent at once."""
    r = redis.Redis(db=harness.BENCH_REDIS_DB)
    r.delete("bench:ceiling:empty")
    values = []
    for token in range(perf.LOW_COUNT):
        sent = time.monotonic()
        current_app.send_task("bench.ceilings.tasks.empty", args=(token,))
        r.blpop("bench:ceiling:empty", timeout=10)
        values.append((time.monotonic() - sent) * 1000)
        time.sleep(1 / perf.LOW_RATE)
    ran, seconds = run_empty_tasks(perf.EMPTY_TASKS)
    return {
        "p50_ms": load.percentile(values, 50),
        "p99_ms": load.percentile(values, 99),
        "tasks_per_s": ran / seconds,
    }


def run_empty_tasks(count: int) -> tuple[int, float]:
    """Send ``count`` of ``bench.ceilings.tasks.empty`` at once and wait until they ran (at
    most 60 s); return how many ran and the seconds that took."""
    done = redis.Redis(db=harness.BENCH_REDIS_DB)
    done.delete("bench:ceiling:empty")
    start = time.monotonic()
    for token in range(count):
        current_app.send_task("bench.ceilings.tasks.empty", args=(token,))
    while done.llen("bench:ceiling:empty") < count and time.monotonic() - start < 60:
        time.sleep(0.01)
    return done.llen("bench:ceiling:empty"), time.monotonic() - start


# --- Harbor ----------------------------------------------------------------------------------


def measure_harbor(world: World, listener, full: bool) -> dict:
    """Harbor's figures with the current number of idle waiting builds. ``full`` adds the
    32-client throughput and the search for the sustained rate. Throughput runs last: its
    ``work`` messages leave the engine a backlog."""
    out = {}

    def jobs(count: int):
        return [
            (SENDMESSAGE, {"receiver": w.target_phid, "type": "pass"}, w.key)
            for w in world.waiting_builds(count, tag=f"m{time.monotonic_ns()}")
        ]

    out["latency_low"] = _lat(
        send_and_time(listener, jobs(perf.LOW_COUNT), perf.LOW_RATE, 1, token=world.token)
    )
    harness.wait_quiet()
    if full:
        out.update(_sustained(listener, jobs, world.token))
    else:
        saturated = send_and_time(listener, jobs(perf.SATURATE_COUNT), None, 8, token=world.token)
        out["saturated"] = _lat(saturated)
        harness.wait_quiet()
    out["builds_per_s"] = _three_step_builds(world, listener)
    out["wrong_status"] = Build.objects.filter(
        plan=world.wait_plan, status__in=["failed", "error", "deadlocked"]
    ).count()
    receivers = world.waiting_builds(100, tag=f"tp{time.monotonic_ns()}")
    bodies = [{"receiver": w.target_phid, "type": "work"} for w in receivers]
    for clients in (8, 32) if full else (8,):
        out[f"throughput_{clients}"] = _tp(
            wrk(SENDMESSAGE, bodies, clients, perf.WRK_SECONDS, token=world.token)
        )
        harness.wait_quiet(settle=1)
    if full:
        out["throughput_verdicts_8"] = _verdict_throughput(world)
    return out


def _verdict_throughput(world: World) -> dict:
    """sendmessage throughput at 8 clients for ``pass`` verdicts, each to a waiting target
    of its own, so each one wakes the engine, as each ceiling message queues its task (a
    ``work`` message wakes nothing). More targets than wrk can reach in its run: a verdict
    to a target already passed would be refused (409) and counted as an error."""
    tag = f"tv{time.monotonic_ns()}"
    receivers = world.waiting_builds(VERDICT_TARGETS, tag=tag)
    bodies = [{"receiver": w.target_phid, "type": "pass"} for w in receivers]
    figure = _tp(wrk(SENDMESSAGE, bodies, 8, perf.WRK_SECONDS, token=world.token))
    harness.wait_quiet(settle=1)
    # The builds wrk did not reach would still be waiting: they go, so the number of builds
    # waiting at once stays the one the later figures are printed for.
    unreached = Buildable.objects.filter(commit__startswith=f"{tag}-", status="building")
    unreached.delete()
    return figure


def _three_step_builds(world: World, listener) -> dict:
    """Start builds of the three-step plan at once; builds/s from the start to the last
    build's decision, and each build's start-to-decision time."""
    start = time.monotonic()
    ids = world.start_three_step_builds(perf.THREE_STEP_BUILDS)
    started = time.monotonic()
    keys = [f"b:{i}" for i in ids]
    missing = listener.wait_for(keys, 60)
    done = [listener.seen[k] for k in keys if k in listener.seen]
    passed = sum(1 for k in keys if listener.statuses.get(k) == "passed")
    harness.wait_quiet()
    handoffs = step_handoffs_ms(ids)
    return {
        "builds_per_s": len(done) / (max(done) - start) if done else 0.0,
        "start_seconds": started - start,
        "p50_ms": load.percentile([(t - start) * 1000 for t in done], 50),
        "missing": missing,
        "passed": passed,
        "handoff_p50_ms": load.percentile(handoffs, 50) if handoffs else 0.0,
        "handoff_p99_ms": load.percentile(handoffs, 99) if handoffs else 0.0,
        "handoffs": len(handoffs),
    }


def step_handoffs_ms(build_ids: list[int]) -> list[float]:
    """Step hand-off latency of each dependency edge in the builds: a target completes
    (``date_completed``, written by the worker that finished it) → the target of the step
    that depends on it starts (``date_started``, written by the worker that claimed it), in
    ms. Both stamps come from worker processes on this machine's one clock."""
    targets = BuildTarget.objects.filter(build_id__in=build_ids).values(
        "build_id", "step_key", "date_started", "date_completed"
    )
    by_build: dict[int, dict[str, dict]] = {}
    for target in targets:
        by_build.setdefault(target["build_id"], {})[target["step_key"]] = target
    out = []
    for build_targets in by_build.values():
        for step in THREE_STEP_PLAN["steps"]:
            after = build_targets.get(step["key"])
            for dependency in step.get("depends_on", []):
                before = build_targets.get(dependency)
                if after and before and after["date_started"] and before["date_completed"]:
                    gap = after["date_started"] - before["date_completed"]
                    out.append(gap.total_seconds() * 1000)
    return out


# --- Queries and plans -----------------------------------------------------------------------


@contextmanager
def _no_follow_ups():
    """Keep in-process engine calls from queueing tasks for the bench's workers."""
    with mock.patch.object(dispatch, "update_build"), mock.patch.object(dispatch, "run_targets"):
        yield


def _captured(action) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        action()
    return [q["sql"] for q in captured.captured_queries]


def queries_per_pass(world: World) -> dict:
    """SQL statements of the hot path, run in-process on the bench database: a sendmessage
    through the REST stack of a ``work`` message (stored only) and of a ``pass`` verdict
    (stored, then decided by the pass the request runs once the message has committed), a
    pass with nothing to do, and the start of a three-step build for a new buildable (with
    its first pass, which creates its first target)."""
    working, waiting, idle = world.waiting_builds(3, tag=f"q{time.monotonic_ns()}")
    client = DjangoClient(HTTP_AUTHORIZATION=f"Bearer {world.token}")

    def send(receiver: Waiting, message_type: str):
        body = {"receiver": receiver.target_phid, "type": message_type}
        return lambda: client.post(SENDMESSAGE, body, content_type="application/json")

    sql = {}
    with _no_follow_ups():
        sql["sendmessage, work"] = _captured(send(working, "work"))
        sql["sendmessage, pass, and its pass"] = _captured(send(waiting, "pass"))
        sql["idle pass"] = _captured(lambda: engine.update_build(idle.build_id))
        sql["start of a 3-step build"] = _captured(lambda: world.start_three_step_builds(1))
    return {
        "counts": {name: len(statements) for name, statements in sql.items()},
        "decided": Build.objects.get(pk=waiting.build_id).status,
        "sql": sql,
    }


SKIPPED = re.compile(r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT|INSERT)", re.I)


def explain(sql: dict[str, list[str]]) -> list[dict]:
    """EXPLAIN (no ANALYZE: nothing runs) of each distinct SELECT/UPDATE on the hot path; a
    named read is explained as its ``EXECUTE`` (the plan its prepared statement runs) and
    shown as the statement it executes."""
    seen, plans = set(), []
    for statements in sql.values():
        for executed in statements:
            statement = named_reads.statement_of(executed)
            shape = re.sub(r"\b\d+\b|'[^']*'", "?", statement)
            if SKIPPED.match(statement) or shape in seen:
                continue
            seen.add(shape)
            runnable = executed[executed.rfind("EXECUTE ") :] if statement != executed else executed
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (COSTS OFF) " + runnable)
                plan = [row[0] for row in cursor.fetchall()]
            plans.append(
                {
                    "sql": statement,
                    "plan": plan,
                    "seq_scan": any("Seq Scan" in line for line in plan),
                }
            )
    return plans


# --- Report ----------------------------------------------------------------------------------


def _ratio(value: float, ceiling: float) -> str:
    return f"{value / ceiling:5.2f}" if ceiling else "  n/a"


def _latency_row(row: str, label: str, harbor: dict, ceiling: dict) -> str:
    """A report row of p50 / p99 latencies (ms), with the ratio of the p50s."""
    return row.format(
        label,
        f"{harbor['p50_ms']:.1f} / {harbor['p99_ms']:.1f}",
        f"{ceiling['p50_ms']:.1f} / {ceiling['p99_ms']:.1f}",
        _ratio(harbor["p50_ms"], ceiling["p50_ms"]),
    )


def print_report(results: dict) -> None:
    c = results["ceiling"]
    cfg = results["config"]
    scales = results["scales"]
    base_scale = next(iter(scales))
    h = scales[base_scale]
    print()
    print("=" * 100)
    print(
        f"Harbor benchmark  gunicorn {cfg['gunicorn_workers']} sync workers; celery engine "
        f"-c {cfg['engine_concurrency']}, targets -c {cfg['targets_concurrency']}; "
        f"load before {cfg['load_before']}, after {results['load_after']}; "
        f"{results['seconds']:.0f} s"
    )
    print("=" * 100)
    row = "{:<58} {:>14} {:>14} {:>8}"
    print(row.format("figure", "Harbor", "ceiling", "ratio"))
    for clients in (8, 32):
        hv, cv = h[f"throughput_{clients}"], c[f"throughput_{clients}"]
        print(
            row.format(
                f"sendmessage msg/s, {clients} clients (wrk)",
                f"{hv['rate']:.0f}",
                f"{cv['rate']:.0f}",
                _ratio(hv["rate"], cv["rate"]),
            )
        )
        print(_latency_row(row, f"  latency p50 / p99 ms, {clients} clients", hv, cv))
        if clients == 8 and "throughput_verdicts_8" in h:
            hv = h["throughput_verdicts_8"]
            print(
                row.format(
                    f"  the same, `pass` verdicts (wake the engine; {hv['errors']} errors)",
                    f"{hv['rate']:.0f}",
                    f"{cv['rate']:.0f}",
                    _ratio(hv["rate"], cv["rate"]),
                )
            )
            print(_latency_row(row, "  latency p50 / p99 ms, `pass` verdicts", hv, cv))
    label = f"message→decision p50 / p99 ms at {perf.LOW_RATE}/s"
    print(_latency_row(row, label, h["latency_low"], c["latency_low"]))
    print(
        row.format(
            "decisions/s, saturated (8 closed-loop clients)",
            f"{h['saturated']['decision_rate']:.0f}",
            f"{c['saturated']['decision_rate']:.0f}",
            _ratio(h["saturated"]["decision_rate"], c["saturated"]["decision_rate"]),
        )
    )
    print(
        row.format(
            "decisions/s sustained without a growing backlog",
            f"{h['sustained_rate']:.0f}",
            f"{c['sustained_rate']:.0f}",
            _ratio(h["sustained_rate"], c["sustained_rate"]),
        )
    )
    label = "  message→decision p50 / p99 ms at that rate"
    print(_latency_row(row, label, h["latency_sustained"], c["latency_sustained"]))
    e = c["empty_task"]
    b = h["builds_per_s"]
    print(
        row.format(
            "builds/s, 3 trivial steps vs empty tasks/s ÷ 7 (7 tasks a build at first)",
            f"{b['builds_per_s']:.1f}",
            f"{e['tasks_per_s'] / 7:.1f}",
            _ratio(b["builds_per_s"], e["tasks_per_s"] / 7),
        )
    )
    print(
        row.format(
            "  starting them here (a transaction each, while the first ones run) s",
            f"{b['start_seconds']:.2f}",
            "",
            "",
        )
    )
    print(
        row.format(
            "  step hand-off p50 / p99 ms (a target completes → the next starts)",
            f"{b.get('handoff_p50_ms', 0):.1f} / {b.get('handoff_p99_ms', 0):.1f}",
            "",
            "",
        )
    )
    print(
        row.format(
            "empty task round trip p50 / p99 ms; tasks/s",
            "",
            f"{e['p50_ms']:.1f} / {e['p99_ms']:.1f}; {e['tasks_per_s']:.0f}",
            "",
        )
    )
    _print_rounds(results)
    print()
    print("With N builds waiting at once (idle waiting builds + the measurement's own):")
    srow = "{:>7} {:>12} {:>16} {:>18} {:>14} {:>10} {:>12}"
    print(
        srow.format(
            "N",
            "send msg/s",
            "send p50/p99 ms",
            "decision p50/p99",
            "decisions/s",
            "builds/s",
            "vs N=" + str(base_scale),
        )
    )
    for scale, s in scales.items():
        print(
            srow.format(
                scale,
                f"{s['throughput_8']['rate']:.0f}",
                f"{s['throughput_8']['p50_ms']:.1f}/{s['throughput_8']['p99_ms']:.1f}",
                f"{s['latency_low']['p50_ms']:.1f}/{s['latency_low']['p99_ms']:.1f}",
                f"{s['saturated']['decision_rate']:.0f}",
                f"{s['builds_per_s']['builds_per_s']:.1f}",
                _ratio(s["latency_low"]["p50_ms"], h["latency_low"]["p50_ms"]),
            )
        )
    problems = [
        f"N={n}: {s['latency_low']['missing'] + s['saturated']['missing']} decisions missing, "
        f"{s['wrong_status']} wrong, {s['builds_per_s']['missing']} 3-step builds missing"
        for n, s in scales.items()
        if s["latency_low"]["missing"]
        or s["saturated"]["missing"]
        or s["wrong_status"]
        or s["builds_per_s"]["missing"]
    ]
    print("lost or wrong decisions: " + ("; ".join(problems) if problems else "none"))
    print()
    small, large = results.get("queries_small", {}), results["queries_large"]
    print("Queries (in-process, CaptureQueriesContext): small DB → large DB")
    for name, count in large["counts"].items():
        print(f"  {name:<34} {small.get('counts', {}).get(name, '?'):>3} → {count:>3}")
    print()
    print("EXPLAIN of the hot path's reads and updates (large DB):")
    for item in results["explain"]:
        flag = "SEQ SCAN" if item["seq_scan"] else "index"
        print(f"  [{flag}] {_short(item['sql'])}")
        for line in item["plan"]:
            if "Scan" in line or "Index" in line:
                print(f"        {line.strip()}")
    print()
    print("Peak RSS (VmHWM): " + ", ".join(f"{k} {v:.0f} MB" for k, v in results["rss_mb"].items()))


def _print_rounds(results: dict) -> None:
    """Each round's goal ratios and the ratios of the medians above, to show the spread."""
    rounds = results.get("rounds") or []
    if len(rounds) < 2:
        return
    print()
    names = list(goal_ratios(*rounds[0]))
    print(f"Harbor ÷ ceiling by round (each figure above is the median of {len(rounds)}):")
    row = "  {:<14}" + " {:>24}" * len(names)
    print(row.format("", *names))
    for number, (ceiling, harbor) in enumerate(rounds, 1):
        ratios = goal_ratios(ceiling, harbor).values()
        print(row.format(f"round {number}", *(f"{r:.2f}" for r in ratios)))
    medians = goal_ratios(results["ceiling"], next(iter(results["scales"].values())))
    print(row.format("of the medians", *(f"{r:.2f}" for r in medians.values())))


def _short(sql: str, width: int = 150) -> str:
    sql = re.sub(r'"[a-z_]+"\."([a-z_]+)"', r"\1", sql)
    sql = re.sub(r"SELECT .*? FROM", "SELECT … FROM", sql)
    return sql if len(sql) <= width else sql[: width - 1] + "…"
