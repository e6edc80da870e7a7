"""A log as numbered lines: any window of lines read from only the chunks holding it,
however the text is cut into chunks; the tail; a search across chunk boundaries."""

import pytest

from builds import log_view
from builds.models import BuildLog, BuildLogChunk
from builds.queries import logs_with_tails
from tests.ui.conftest import make_build, make_target, plan_of

pytestmark = pytest.mark.django_db

TEXT = "".join(f"line {n}\n" for n in range(1, 101))


def make_log(buildable, pieces: list[str]) -> BuildLog:
    target = make_target(make_build(plan_of(1), buildable), "step-0")
    log = BuildLog.objects.create(target=target, source="s", log_type="o")
    BuildLogChunk.objects.bulk_create(BuildLogChunk(log=log, text=piece) for piece in pieces)
    return log


def cut(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def texts(window) -> list[str]:
    return [str(line.html) for line in window.lines]


@pytest.mark.parametrize("size", [3, 7, 8, 50, 10_000])
def test_a_window_shows_the_lines_asked_for_however_the_log_is_chunked(buildable, size):
    log = make_log(buildable, cut(TEXT, size))
    window = log_view.window(log, first=41, size=5)
    assert texts(window) == [f"line {n}" for n in range(41, 46)]
    assert [line.number for line in window.lines] == list(range(41, 46))
    assert (window.line_count, window.previous_start, window.next_start) == (100, 1, 46)


def test_a_window_reads_only_the_chunks_holding_its_lines(buildable, django_assert_num_queries):
    log = make_log(buildable, cut(TEXT, 100))
    chunks = list(log.chunks.order_by("id").values_list("id", flat=True))
    with django_assert_num_queries(3) as queries:
        log_view.window(log, first=50, size=3)
    read = queries.captured_queries[2]["sql"]
    # Lines 1-9 take 7 bytes, the next 8: lines 50-52 are bytes 383-406, in chunks 3 and 4.
    assert f"IN ({chunks[3]}, {chunks[4]})" in read


def test_without_a_start_the_window_is_the_tail_and_an_unfinished_line_counts(buildable):
    log = make_log(buildable, cut(TEXT + "no newline yet", 9))
    window = log_view.window(log, size=3)
    assert texts(window) == ["line 99", "line 100", "no newline yet"]
    assert (window.first, window.last, window.line_count, window.next_start) == (99, 101, 101, None)


def test_the_tail_of_a_log_ending_with_a_newline_has_no_empty_last_line(buildable):
    log = make_log(buildable, cut(TEXT, 64))
    window = log_view.window(log, size=2)
    assert texts(window) == ["line 99", "line 100"]


@pytest.mark.parametrize("size", [5, 64, 10_000])
def test_the_build_pages_tail_numbers_lines_from_the_prefetched_last_chunks(buildable, size):
    make_log(buildable, cut(TEXT, size))
    log = logs_with_tails().get()
    tail = log_view.tail_of(log, log.tail_chunks[::-1], log.newline_total)
    assert tail.lines, "some lines are shown"
    assert all(str(line.html) == f"line {line.number}" for line in tail.lines)
    assert tail.lines[-1].number == 100 and tail.line_count == 100


def test_the_tail_reads_only_the_end_of_a_large_log(buildable):
    big = "x" * 1000 + "\n"
    make_log(buildable, [big * 1000, big * 1000, big * 1000])
    log = logs_with_tails().get()
    assert len(log.tail_chunks) == 1 and log.newline_total == 3000
    tail = log_view.tail_of(log, log.tail_chunks[::-1], log.newline_total)
    assert tail.lines[-1].number == 3000 and len(tail.lines) <= log_view.TAIL_LINES


def test_search_finds_lines_across_chunk_boundaries_with_their_numbers(buildable):
    log = make_log(buildable, cut(TEXT.replace("line 77", "line 77 \x1b[31mERROR\x1b[0m"), 4))
    matches, more = log_view.search(log, "error")
    assert [(m.number, str(m.html)) for m in matches] == [
        (77, 'line 77 <span class="ansi-fg-red">ERROR</span>')
    ]
    assert not more
    matches, more = log_view.search(log, "line 1")
    assert [m.number for m in matches] == [1, *range(10, 20), 100]
