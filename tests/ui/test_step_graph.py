"""The build page's step graph: layers so every arrow points right, fan-outs stacked, boxes
coloured by their target's status, one arrow per dependency."""

import re

import pytest
from django.urls import reverse

from builds import step_graph
from builds.queries import StepRow
from tests.conftest import make_plan
from tests.ui.conftest import make_build, make_target

pytestmark = pytest.mark.django_db


def rows(spec: dict[str, list[str]]) -> list[StepRow]:
    return [StepRow({"key": key, "depends_on": deps}, None) for key, deps in spec.items()]


def test_each_step_sits_one_layer_right_of_its_deepest_dependency():
    graph = step_graph.graph(
        rows({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["a", "d"]})
    )
    x = {node.key: node.x for node in graph.nodes}
    column = step_graph.BOX_WIDTH + step_graph.COLUMN_GAP
    assert [x[key] // column for key in "abcde"] == [0, 1, 1, 2, 3]
    assert len(graph.edges) == 6


def test_a_fan_out_stacks_in_one_column_and_a_chain_runs_in_one_row():
    fan = step_graph.graph(rows({"root": [], **{f"leaf{i}": ["root"] for i in range(30)}}))
    assert len({node.x for node in fan.nodes}) == 2
    assert len({node.y for node in fan.nodes if node.key != "root"}) == 30
    chain = step_graph.graph(rows({f"s{i}": [f"s{i - 1}"] if i else [] for i in range(25)}))
    assert len({node.y for node in chain.nodes}) == 1
    assert chain.width > 25 * step_graph.BOX_WIDTH  # fixed-size boxes: it scrolls, not shrinks


def test_children_are_ordered_by_their_parents_rows_so_arrows_do_not_cross():
    graph = step_graph.graph(rows({"p": [], "q": [], "from-q": ["q"], "from-p": ["p"]}))
    y = {node.key: node.y for node in graph.nodes}
    assert y["p"] < y["q"] and y["from-p"] < y["from-q"]


def test_a_cycle_or_a_missing_dependency_still_draws_every_step():
    graph = step_graph.graph(rows({"a": ["b"], "b": ["a"], "c": ["nowhere"]}))
    assert {node.key for node in graph.nodes} == {"a", "b", "c"}


def test_the_build_page_draws_boxes_coloured_by_status_with_arrows(signed_in, buildable):
    plan = make_plan(
        "graph",
        [
            {"key": "build", "name": "Compile everything"},
            {"key": "test", "depends_on": ["build"]},
            {"key": "lint", "depends_on": ["build"]},
        ],
    )
    build = make_build(plan, buildable)
    make_target(build, "build", status="passed", name="Compile everything")
    make_target(build, "test", status="failed")
    html = signed_in.get(reverse("build-detail", args=[build.id])).content.decode()
    start = html.index('<svg role="img"')
    svg = html[start : html.index("</svg>", start)]
    assert re.search(r'class="node tone-ok status-passed" data-key="build"', svg)
    assert re.search(r'class="node tone-bad status-failed" data-key="test"', svg)
    assert re.search(r'class="node tone-neutral status-not-started" data-key="lint"', svg)
    assert svg.count('class="edge"') == 2
    assert ">Compile everything<" in svg
