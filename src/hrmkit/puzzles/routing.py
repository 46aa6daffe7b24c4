"""City routing ("logistics"): the tokens, the vehicles' rules, the A* oracle and the judge of a route.

A scenario is a city map with a start depot S and a goal depot G, driven by one vehicle; the
vehicle decides which roads may be driven and what they cost, so the same map has different
answers. Maze datasets teach one shortest path; these teach a weighted one that depends on a
token of the input, which is what makes the variants learnable (routing_dataset.py builds them).

Encoding (seq_len = size*size + 1; token t < VOCAB_SIZE = 18; pad 0 never appears in a real row):

    position 0 .. size*size-1   the map, row-major, one cell token each
    position size*size          the vehicle token (its label is 0, the ignore label)

    0 pad            5 highway            10 closure        15 car
    1 building       6 jammed lane        11 start (S)      16 van
    2 lane           7 jammed street      12 goal (G)       17 truck
    3 street         8 jammed avenue      13 path (labels)
    4 avenue         9 jammed highway     14 bike

A jammed road is its road token + 4. The label is the input with the cells of one minimum-cost
S->G route (S and G excluded) marked 13, like maze.py marks its BFS path; the label of the vehicle
position is 0, so the loss ignores it. `render` draws a row as text, `decode` takes it apart.

Driving: 4-connected moves; entering a cell costs `VEHICLE_COSTS[vehicle][road]`, times
`JAM_FACTOR[vehicle]` when the road is jammed; a road missing from a vehicle's table may not be
entered, jammed or not (a jam raises a cost, never legalises a road). Buildings and closures are
impassable for every vehicle. S and G are depots: buildings fronting a road; entering G costs
`GOAL_COST`, S is never re-entered. A route's cost is the sum of its entry costs after S.

    vehicle  lane  street  avenue  highway  jam
    bike       1      2       3       -     x2     (no highways)
    car        4      3       2       1     x3
    van        -      4       2       1     x3     (too wide for lanes)
    truck      -      -       3       2     x4     (avenues and highways only)

The oracle is A* with an admissible, consistent heuristic (the Manhattan distance priced at the
cheapest step, see `astar`). When several routes share the minimum cost, the label is the one A*
returns (equal f leave the queue by lower heuristic, then lower cell index). Nothing makes that
choice learnable, and dihedral augmentation (the builder's `aug`) carries transformed routes that
A* would not necessarily pick: evaluate with `is_legal_path` / `optimal_cost` (cost-optimality),
not exact match. About 20 % (10x10) to 28 % (30x30) of the examples have tied optima; the
builder's `unique_routes` keeps only scenarios where no vehicle has a tie, which makes exact
match and cost-optimality the same test.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from hrmkit.puzzles.grid import cells_off_a_route, neighbours, reachable_cells

PAD, BUILDING, LANE, STREET, AVENUE, HIGHWAY = 0, 1, 2, 3, 4, 5
JAM_OFFSET = 4  # a jammed road is its road token + JAM_OFFSET
JAMMED_LANE, JAMMED_STREET, JAMMED_AVENUE, JAMMED_HIGHWAY = 6, 7, 8, 9
CLOSURE, START, GOAL, PATH = 10, 11, 12, 13
VEHICLES = ("bike", "car", "van", "truck")
VEHICLE_TOKENS = {"bike": 14, "car": 15, "van": 16, "truck": 17}
VOCAB_SIZE = 18

ROADS = {"lane": LANE, "street": STREET, "avenue": AVENUE, "highway": HIGHWAY}
TOKEN_NAMES = ("pad", "building", "lane", "street", "avenue", "highway", "jammed lane", "jammed street",
               "jammed avenue", "jammed highway", "closure", "start", "goal", "path", *VEHICLES)
TOKEN_CHARS = "?#.-=H,~*hXSGobcvt"  # one character per token, for `render`

# Entry cost of each road a vehicle may use; a road that is not listed may not be entered.
VEHICLE_COSTS: dict[str, dict[str, int]] = {
    "bike": {"lane": 1, "street": 2, "avenue": 3},
    "car": {"lane": 4, "street": 3, "avenue": 2, "highway": 1},
    "van": {"street": 4, "avenue": 2, "highway": 1},
    "truck": {"avenue": 3, "highway": 2},
}
JAM_FACTOR: dict[str, int] = {"bike": 2, "car": 3, "van": 3, "truck": 4}
GOAL_COST = 1  # entering the goal depot, for every vehicle

_VEHICLE_OF_TOKEN = {token: vehicle for vehicle, token in VEHICLE_TOKENS.items()}


def vehicle_table() -> dict[str, dict[str, Any]]:
    """The vehicles as plain data (also saved in hrmkit_build.json for viewers and checkers)."""
    return {
        vehicle: {
            "token": VEHICLE_TOKENS[vehicle],
            "passable": list(costs),
            "costs": dict(costs),
            "jammed_costs": {road: cost * JAM_FACTOR[vehicle] for road, cost in costs.items()},
            "jam_factor": JAM_FACTOR[vehicle],
            "goal_cost": GOAL_COST,
        }
        for vehicle, costs in VEHICLE_COSTS.items()
    }


def token_name(token: int) -> str:
    """A token's name ("lane", "car"), or "token N" for an id outside the vocabulary (a model can predict one)."""
    return TOKEN_NAMES[token] if 0 <= token < VOCAB_SIZE else f"token {token}"


def token_map() -> dict[str, int]:
    """Token name -> id, for summaries and viewers."""
    return {name: token for token, name in enumerate(TOKEN_NAMES)}


def _cost_lookup(vehicle: str) -> np.ndarray:
    """[VOCAB_SIZE] entry cost of every token for `vehicle`; 0 where it may not enter."""
    table = np.zeros(VOCAB_SIZE, dtype=np.int64)
    for road, cost in VEHICLE_COSTS[vehicle].items():
        table[ROADS[road]] = cost
        table[ROADS[road] + JAM_OFFSET] = cost * JAM_FACTOR[vehicle]
    table[GOAL] = GOAL_COST
    return table


_COST_LOOKUPS = {vehicle: _cost_lookup(vehicle) for vehicle in VEHICLES}


# --------------------------------------------------------------------------- decoding


class Scenario(NamedTuple):
    """One example's input taken apart."""

    grid: np.ndarray  # [size, size] cell tokens, S and G included
    start: tuple[int, int]  # (row, column) of S
    goal: tuple[int, int]  # (row, column) of G
    vehicle: str


def _row_tokens(row: Any, size: int) -> np.ndarray:
    tokens = np.asarray(row).reshape(-1)
    if tokens.size != size * size + 1:
        raise ValueError(f"a routing row holds size*size+1 = {size * size + 1} tokens for size {size}, got {tokens.size}")
    return tokens.astype(np.int64)


def decode(input_row: Any, size: int) -> Scenario:
    """The map, S, G and vehicle of one input row; ValueError (one line) when it is not a routing input."""
    tokens = _row_tokens(input_row, size)
    vehicle = _VEHICLE_OF_TOKEN.get(int(tokens[-1]))
    if vehicle is None:
        raise ValueError(f"last token {int(tokens[-1])} is not a vehicle token {sorted(_VEHICLE_OF_TOKEN)}")
    cells = tokens[:-1]
    strangers = np.flatnonzero((cells < BUILDING) | (cells > GOAL))
    if strangers.size:
        row, column = divmod(int(strangers[0]), size)
        raise ValueError(f"cell ({row}, {column}) holds token {int(cells[strangers[0]])}, not a map cell")
    ends = []
    for token, name in ((START, "S"), (GOAL, "G")):
        found = np.flatnonzero(cells == token)
        if found.size != 1:
            raise ValueError(f"a routing map needs exactly one {name}, found {found.size}")
        ends.append(divmod(int(found[0]), size))
    return Scenario(cells.reshape(size, size), ends[0], ends[1], vehicle)


def entry_costs(grid: Any, vehicle: str) -> np.ndarray:
    """Flat int64 cost of entering every cell of a map (tokens, any shape) for `vehicle`; 0 = may not enter."""
    if vehicle not in _COST_LOOKUPS:
        raise ValueError(f"unknown vehicle {vehicle!r}; known: {', '.join(VEHICLES)}")
    return _COST_LOOKUPS[vehicle][np.asarray(grid, dtype=np.int64).reshape(-1)]


def render(row: Any, size: int) -> str:
    """A row (input, label or prediction) as `size` lines of TOKEN_CHARS, then the vehicle's name."""
    tokens = _row_tokens(row, size)
    chars = [TOKEN_CHARS[t] if 0 <= t < VOCAB_SIZE else "?" for t in tokens.tolist()]
    lines = ["".join(chars[start : start + size]) for start in range(0, size * size, size)]
    vehicle = _VEHICLE_OF_TOKEN.get(int(tokens[-1]), f"token {int(tokens[-1])}")
    return "\n".join([*lines, f"vehicle: {vehicle}"])


# --------------------------------------------------------------------------- the oracle


def astar(costs: Any, size: int, start: int, goal: int) -> tuple[int, list[int]] | None:
    """(cost, flat cells S..G) of one minimum-cost 4-connected route, or None if G is unreachable.

    `costs[cell]` is what entering that cell costs (> 0), 0 where it may not be entered; the
    start's own cost is never paid. With m the Manhattan distance to G, the heuristic is 0 at G
    and cost(G) + (m - 1) * (cheapest other step) elsewhere: every route needs m more steps, the
    last into G, so it never overestimates, and it drops by at most one step's cost per move
    (consistent), so the first time G leaves the queue its cost is optimal. Ties between equal
    f are broken by the lower heuristic, then the lower cell index, which fixes the route chosen.
    """
    flat = np.asarray(costs).reshape(-1)
    cost_of = flat.tolist()
    if cost_of[goal] <= 0:
        return None
    if start == goal:
        return 0, [start]
    goal_cost = cost_of[goal]
    others = np.delete(flat, goal)
    cheapest = int(others[others > 0].min()) if np.any(others > 0) else goal_cost
    rows, columns = np.divmod(np.arange(flat.size), size)
    distance = np.abs(rows - goal // size) + np.abs(columns - goal % size)
    heuristic = np.where(distance == 0, 0, goal_cost + (distance - 1) * cheapest).tolist()

    total = len(cost_of)
    spent = [-1] * total  # best known cost from S; -1 = not reached
    parents = [-1] * total
    closed = bytearray(total)
    spent[start], parents[start] = 0, start
    queue = [(heuristic[start], heuristic[start], start)]
    while queue:
        _, _, cell = heapq.heappop(queue)
        if closed[cell]:
            continue
        if cell == goal:
            path = [goal]
            while parents[path[-1]] != path[-1]:
                path.append(parents[path[-1]])
            return spent[goal], path[::-1]
        closed[cell] = 1
        for neighbour in neighbours(cell, size):
            if closed[neighbour] or cost_of[neighbour] <= 0:
                continue
            reached = spent[cell] + cost_of[neighbour]
            if spent[neighbour] < 0 or reached < spent[neighbour]:
                spent[neighbour], parents[neighbour] = reached, cell
                estimate = heuristic[neighbour]
                heapq.heappush(queue, (reached + estimate, estimate, neighbour))
    return None


def optimal_route(input_row: Any, size: int) -> tuple[int, list[int]] | None:
    """(cost, flat cells S..G) of the oracle's route for one input row, or None when G is unreachable."""
    scenario = decode(input_row, size)
    costs = entry_costs(scenario.grid, scenario.vehicle)
    start, goal = (row * size + column for row, column in (scenario.start, scenario.goal))
    return astar(costs, size, start, goal)


def optimal_cost(input_row: Any, size: int) -> int | None:
    """Minimum route cost for the row's vehicle, or None when G is unreachable."""
    route = optimal_route(input_row, size)
    return None if route is None else route[0]


def path_cost(input_row: Any, cells: Sequence[int], size: int) -> int | None:
    """Cost of driving `cells` (flat, from S to G, each step 4-adjacent) with the row's vehicle; None if illegal."""
    scenario = decode(input_row, size)
    costs = entry_costs(scenario.grid, scenario.vehicle)
    cells = [int(cell) for cell in cells]
    ends = [row * size + column for row, column in (scenario.start, scenario.goal)]
    if len(cells) < 2 or [cells[0], cells[-1]] != ends:
        return None
    total = 0
    for here, there in zip(cells, cells[1:]):
        (row, column), (next_row, next_column) = divmod(here, size), divmod(there, size)
        if not 0 <= there < size * size or abs(row - next_row) + abs(column - next_column) != 1 or costs[there] <= 0:
            return None
        total += int(costs[there])
    return total


def _distances(cost_of: list[int], size: int, start: int) -> list[int]:
    """Dijkstra: the minimum cost from `start` to every cell (-1 where unreachable)."""
    spent = [-1] * len(cost_of)
    spent[start] = 0
    queue = [(0, start)]
    while queue:
        reached, cell = heapq.heappop(queue)
        if reached != spent[cell]:
            continue
        for neighbour in neighbours(cell, size):
            if cost_of[neighbour] > 0:
                onward = reached + cost_of[neighbour]
                if spent[neighbour] < 0 or onward < spent[neighbour]:
                    spent[neighbour] = onward
                    heapq.heappush(queue, (onward, neighbour))
    return spent


def count_optimal_routes(input_row: Any, size: int) -> int:
    """How many different minimum-cost S->G routes the row's vehicle has (0 when G is unreachable)."""
    scenario = decode(input_row, size)
    cost_of = entry_costs(scenario.grid, scenario.vehicle).tolist()
    start, goal = (row * size + column for row, column in (scenario.start, scenario.goal))
    spent = _distances(cost_of, size, start)
    if spent[goal] < 0:
        return 0
    routes = [0] * len(cost_of)
    routes[start] = 1
    # Costs are positive, so every cell's predecessors on cheapest routes come before it in this order.
    for cell in sorted((cell for cell, cost in enumerate(spent) if cost > 0), key=spent.__getitem__):
        for neighbour in neighbours(cell, size):
            if spent[neighbour] >= 0 and spent[neighbour] + cost_of[cell] == spent[cell]:
                routes[cell] += routes[neighbour]
    return routes[goal]


def judge_path(input_row: Any, label_row: Any, size: int) -> tuple[str | None, int | None]:
    """(None, cost) when `label_row` marks a legal S->G route on `input_row`, else (one-line fault, None).

    Legal: apart from the token at the vehicle position (never scored) the label equals the input
    but for cells marked path; every marked cell may be entered by the vehicle; S, the marked cells
    and G form one simple 4-connected route (each marked cell next to exactly two route cells, the
    ones before and after it, S and G to one; no branch, loop or blob). The cost is that of entering
    every marked cell and G. A malformed input is a fault too, so model predictions can be scored
    blindly.
    """
    try:
        scenario = decode(input_row, size)
    except ValueError as error:
        return f"input: {error}", None
    labels = np.asarray(label_row).reshape(-1)
    if labels.size != size * size + 1:
        return f"label holds {labels.size} tokens, expected {size * size + 1}", None
    cells, marks = scenario.grid.reshape(-1), labels[:-1].astype(np.int64)
    marked = marks == PATH
    changed = np.flatnonzero(~marked & (marks != cells))
    if changed.size:
        cell = int(changed[0])
        return f"label changes cell {divmod(cell, size)} from {token_name(cells[cell])} to {token_name(marks[cell])}", None
    costs = entry_costs(cells, scenario.vehicle)
    illegal = np.flatnonzero(marked & ((costs <= 0) | (cells == GOAL)))
    if illegal.size:
        cell = int(illegal[0])
        return (f"path cell {divmod(cell, size)} is a {TOKEN_NAMES[cells[cell]]}, "
                f"which {scenario.vehicle} may not use"), None
    start, goal = (row * size + column for row, column in (scenario.start, scenario.goal))
    reached = reachable_cells(marked | (cells == GOAL), size, start)
    if not reached[goal]:
        return "path does not connect S to G", None
    stray = np.flatnonzero(marked & ~reached)
    if stray.size:
        return f"{stray.size} path cell(s) not connected to S, first {divmod(int(stray[0]), size)}", None
    on_route = marked.copy()
    on_route[[start, goal]] = True
    off = cells_off_a_route(on_route, size, (start, goal))
    if off.size:
        cell = int(off[0])
        what = "S" if cell == start else "G" if cell == goal else "path cell"
        touching = _route_neighbours(on_route, cell, size)
        return (f"the marks are not one route: {what} {divmod(cell, size)} touches {touching} route "
                f"cell{'' if touching == 1 else 's'} (a route cell touches 2, S and G 1)"), None
    return None, int(costs[marked].sum()) + int(costs[goal])


def _route_neighbours(on_route: np.ndarray, cell: int, size: int) -> int:
    return sum(bool(on_route[neighbour]) for neighbour in neighbours(cell, size))


def is_legal_path(input_row: Any, label_row: Any, size: int) -> tuple[bool, int | None]:
    """(valid, cost): whether `label_row` marks a legal S->G route for the row's vehicle (see `judge_path`)."""
    fault, cost = judge_path(input_row, label_row, size)
    return fault is None, cost


def label_for(input_row: np.ndarray, size: int) -> np.ndarray | None:
    """The label of one input row: the oracle's route marked, the vehicle position 0; None if G is unreachable."""
    route = optimal_route(input_row, size)
    if route is None:
        return None
    labels = input_row.copy()
    labels[route[1][1:-1]] = PATH
    labels[-1] = 0  # the vehicle position: ignored by the loss
    return labels
