"""The unit results a build page shows: counts by result, then one page of results.

A run may report tens of thousands of unit results, so the page never loads them all: the
counts come from one aggregate (annotated on the run's targets), and the listing is one
page (``UNITS_PER_PAGE``) of the run's results, failures first, filtered by text and
result. Names, namespaces and details can be as long as a sender likes; only their first
characters are read from the database (``NAME_SHOWN``, ``DETAILS_SHOWN`` and one more, to
tell whether there is more), and the full text is on the unit result's own page.
"""

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, When
from django.db.models import Value as V
from django.db.models.functions import Left

from builds.models import Build, BuildTarget, UnitResult, unit_test_key
from builds.numbers import ascii_int

UNITS_PER_PAGE = 100
NAME_SHOWN = 200  # characters of a name or namespace shown in the list
DETAILS_SHOWN = 2000  # characters of details shown in the list
# The order counts are shown in: what needs attention first.
RESULT_ORDER = ("fail", "broken", "unsound", "pass", "skip")
FAILING_RESULTS = ("fail", "broken", "unsound")
SEARCH_LIMIT = 200  # characters of a search kept


@dataclass(frozen=True)
class UnitFilters:
    """What the listing is narrowed to: ``text`` found in the name or namespace (any
    case), and one ``result`` (``""`` for any)."""

    text: str = ""
    result: str = ""
    page: int = 1


def unit_filters(params) -> UnitFilters:
    """The filters from GET ``params`` (``unit_q``, ``unit_result``, ``unit_page``);
    unknown results and pages that are not numbers are ignored."""
    result = params.get("unit_result", "")
    return UnitFilters(
        text=params.get("unit_q", "").strip()[:SEARCH_LIMIT],
        result=result if result in UnitResult.Result.values else "",
        page=ascii_int(params.get("unit_page", "")) or 1,
    )


def count_annotations() -> dict:
    """Annotations for a ``BuildTarget`` queryset: ``units_<result>`` (int) per result."""
    return {
        f"units_{result}": Count("unit_results", filter=Q(unit_results__result=result))
        for result in RESULT_ORDER
    }


def target_counts(target: BuildTarget) -> list[tuple[str, int]]:
    """``[(result, how many)]`` of a target annotated with :func:`count_annotations`,
    in ``RESULT_ORDER``, results it has none of left out."""
    pairs = ((result, getattr(target, f"units_{result}", 0)) for result in RESULT_ORDER)
    return [(result, count) for result, count in pairs if count]


def run_counts(targets: list[BuildTarget]) -> list[tuple[str, int]]:
    """``[(result, how many)]`` over ``targets`` (annotated), as :func:`target_counts`."""
    totals = {result: 0 for result in RESULT_ORDER}
    for target in targets:
        for result, count in target_counts(target):
            totals[result] += count
    return [(result, count) for result, count in totals.items() if count]


def failures_first() -> tuple:
    """The order of unit results: failing results first, then by namespace and name."""
    failing = Case(
        When(result__in=FAILING_RESULTS, then=V(0)), default=V(1), output_field=IntegerField()
    )
    return (failing, "namespace", "name", "id")


def listed_results(build: Build, generation: int, filters: UnitFilters) -> QuerySet[UnitResult]:
    """The run's unit results matching ``filters``, failures first, then by namespace and
    name."""
    results = UnitResult.objects.filter(
        target__build=build, target__generation=generation
    ).order_by(*failures_first())
    if filters.result:
        results = results.filter(result=filters.result)
    if filters.text:
        results = results.filter(
            Q(name__icontains=filters.text) | Q(namespace__icontains=filters.text)
        )
    return results


def shown(results: QuerySet[UnitResult]) -> QuerySet[UnitResult]:
    """``results`` in :func:`failures_first` order, only what the list shows:
    ``step`` (the target's name) and the capped ``name_shown``, ``namespace_shown`` and
    ``details_shown`` annotated; the full texts are not loaded."""
    return (
        results.order_by(*failures_first())
        .only("id", "result", "duration", "target_id")
        .annotate(
            test_key=unit_test_key(),
            step=F("target__name"),
            name_shown=Left("name", NAME_SHOWN + 1),
            namespace_shown=Left("namespace", NAME_SHOWN + 1),
            details_shown=Left("details", DETAILS_SHOWN + 1),
        )
    )


def results_page(
    build: Build, generation: int, filters: UnitFilters, counts: list[tuple[str, int]]
) -> Page:
    """Page ``filters.page`` (the last if beyond) of :func:`listed_results`. ``counts`` are
    the run's (:func:`run_counts`): without a text filter they give the number of matches,
    which spares a count query over every result of the run."""
    ordered = listed_results(build, generation, filters)
    paginator = Paginator(ordered.values("id"), UNITS_PER_PAGE)
    if not filters.text:
        by_result = dict(counts)
        # Paginator.count is a cached property: set, it is not queried.
        paginator.count = (
            by_result.get(filters.result, 0) if filters.result else sum(by_result.values())
        )
    page = paginator.get_page(filters.page)
    # The page's ids are chosen first and only those rows get their texts cut and the
    # step's name joined (in the same query, as a subquery): done in the one query for
    # every result of the run, that work outweighed the sort.
    page.object_list = shown(ordered.model.objects.filter(pk__in=page.object_list))
    return page
