"""A build's steps as a graph: boxes in layers, arrows for dependencies, drawn as SVG by the
build page (``templates/builds/_step_graph.html``), so it needs no script.

Layers run left to right: a step's layer is one more than its deepest dependency's, so every
arrow points right. Within a layer steps are ordered by the mean position of their
dependencies (the barycenter heuristic), which keeps arrows short and mostly uncrossed.
Boxes keep one size however many steps there are: a long chain or a wide fan-out makes the
drawing larger (it scrolls in its frame), never its text smaller.
"""

from dataclasses import dataclass

BOX_WIDTH = 176
BOX_HEIGHT = 44
COLUMN_GAP = 56  # between layers, room for the arrows
ROW_GAP = 14
MARGIN = 8
LABEL_SHOWN = 22  # characters of a step's name drawn in its box (the title has it whole)


@dataclass(frozen=True)
class Node:
    """A step's box: its ``key``, ``label`` (capped) and ``name`` (whole), the ``status``
    of its target ("not started" when it has none), and its top-left corner."""

    key: str
    label: str
    name: str
    status: str
    x: int
    y: int


@dataclass(frozen=True)
class Graph:
    """Boxes, arrows (SVG path data, from a dependency to its dependent) and the size."""

    nodes: list[Node]
    edges: list[str]
    width: int
    height: int
    box_width: int = BOX_WIDTH
    box_height: int = BOX_HEIGHT


def layers(keys: list[str], depends_on: dict[str, list[str]]) -> dict[str, int]:
    """Each key's layer: 0 without dependencies, else one more than its deepest known
    dependency's. ``keys`` come in dependency order (``queries.in_dependency_order``); a
    dependency not met yet (a cycle) or not in the plan does not count."""
    layer: dict[str, int] = {}
    for key in keys:
        known = [layer[dep] for dep in depends_on.get(key, []) if dep in layer]
        layer[key] = max(known) + 1 if known else 0
    return layer


def ordered_columns(keys: list[str], depends_on: dict, layer: dict[str, int]) -> list[list[str]]:
    """The keys of each layer, each ordered by the mean row of its dependencies in the
    layer before (ties in plan order)."""
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    row: dict[str, float] = {}
    for index, column in enumerate(columns):
        members = [key for key in keys if layer[key] == index]
        given = {key: position for position, key in enumerate(members)}
        members.sort(key=lambda key, given=given: _centre(key, given[key], depends_on, row))
        column.extend(members)
        row.update({key: float(position) for position, key in enumerate(members)})
    return columns


def _centre(key: str, given: int, depends_on: dict, row: dict) -> tuple[float, int]:
    """Where ``key`` belongs in its layer: the mean row of its placed dependencies (its
    ``given`` position without any), then its given position."""
    rows = [row[dep] for dep in depends_on.get(key, []) if dep in row]
    return (sum(rows) / len(rows) if rows else given, given)


def graph(rows) -> Graph:
    """The drawing of ``rows`` (``queries.StepRow``, in dependency order)."""
    keys = [row.step.get("key") for row in rows]
    depends_on = {row.step.get("key"): list(row.step.get("depends_on") or []) for row in rows}
    layer = layers(keys, depends_on)
    columns = ordered_columns(keys, depends_on, layer)
    tallest = max((len(column) for column in columns), default=0)
    height = 2 * MARGIN + tallest * BOX_HEIGHT + max(tallest - 1, 0) * ROW_GAP
    place: dict[str, tuple[int, int]] = {}
    for index, column in enumerate(columns):
        top = (height - len(column) * (BOX_HEIGHT + ROW_GAP) + ROW_GAP) // 2  # centred
        for position, key in enumerate(column):
            place[key] = (
                MARGIN + index * (BOX_WIDTH + COLUMN_GAP),
                top + position * (BOX_HEIGHT + ROW_GAP),
            )
    nodes = [_node(row, *place[row.step.get("key")]) for row in rows]
    edges = [
        _arrow(place[dep], place[key]) for key in keys for dep in depends_on[key] if dep in place
    ]
    width = 2 * MARGIN + len(columns) * BOX_WIDTH + max(len(columns) - 1, 0) * COLUMN_GAP
    return Graph(nodes, edges, width, height)


def _node(row, x: int, y: int) -> Node:
    name = row.target.name if row.target and row.target.name else None
    name = name or row.step.get("name") or row.step.get("key")
    label = name if len(name) <= LABEL_SHOWN else name[: LABEL_SHOWN - 1] + "…"
    status = row.target.status if row.target else "not started"
    return Node(row.step.get("key"), label, name, status, x, y)


def _arrow(start: tuple[int, int], end: tuple[int, int]) -> str:
    """A curve from the right middle of the box at ``start`` to the left middle of the box
    at ``end``; dependencies in the same layer (a cycle) get a straight line."""
    x1, y1 = start[0] + BOX_WIDTH, start[1] + BOX_HEIGHT // 2
    x2, y2 = end[0] - 2, end[1] + BOX_HEIGHT // 2
    bend = max((x2 - x1) // 2, 12)
    return f"M{x1} {y1} C{x1 + bend} {y1} {x2 - bend} {y2} {x2} {y2}"
