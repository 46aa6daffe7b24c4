"""City-routing ("logistics") datasets in the reference puzzle format: one map, several vehicles.

Each base scenario is a random city map with a start depot S and a goal depot G; it yields one
example per vehicle, and the vehicle decides which roads may be driven and what they cost, so the
same map has different answers. Maze datasets teach one shortest path; these teach a weighted one
that depends on a token of the input, which is what makes the variants learnable.

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
A group is one base scenario: one puzzle holding an example per vehicle (with `aug`, 8 puzzles,
one per dihedral transform of the map), so training sees a map's vehicles side by side.

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
choice learnable, and dihedral augmentation (`aug`) carries transformed routes that A* would not
necessarily pick: evaluate with `is_legal_path` / `optimal_cost` (cost-optimality), not exact match.
About 20 % (10x10) to 28 % (30x30) of the examples have tied optima; `unique_routes` keeps only
scenarios where no vehicle has a tie, which makes exact match and cost-optimality the same test.

Maps: road lines at random spacings across both axes; one in four (at least one per axis) is an
avenue running edge to edge, the others are cut at every crossing into segments that are each a
lane, a street or missing; one diagonal highway (two from size 20) runs as a 4-connected
staircase whose junctions with other roads are avenue cells (so every vehicle can cross it);
then a few short jams and a few closures. Depots are drawn at least size//2 apart
(Manhattan). A scenario in which some vehicle cannot reach G is regenerated, never relaxed. Test
maps are drawn first, and no map (depots ignored, any of its 8 dihedral transforms) occurs twice
across train and test, so test inputs never occur in train.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from hrmkit.files import check_output_free
from hrmkit.puzzles.format import PuzzleDatasetMetadata, write_generated_dataset
from hrmkit.puzzles.grid import neighbours, reachable_cells
from hrmkit.puzzles.maze import dihedral_transform
from hrmkit.puzzles.selection import (
    MAX_CONSECUTIVE_REJECTIONS,
    ProgressCallback,
    Selection,
    select,
    spread,
)

PAD, BUILDING, LANE, STREET, AVENUE, HIGHWAY = 0, 1, 2, 3, 4, 5
JAM_OFFSET = 4  # a jammed road is its road token + JAM_OFFSET
JAMMED_LANE, JAMMED_STREET, JAMMED_AVENUE, JAMMED_HIGHWAY = 6, 7, 8, 9
CLOSURE, START, GOAL, PATH = 10, 11, 12, 13
VEHICLES = ("bike", "car", "van", "truck")
VEHICLE_TOKENS = {"bike": 14, "car": 15, "van": 16, "truck": 17}
VOCAB_SIZE = 18
MIN_SIZE = 8  # room for two road lines per axis and depots size//2 apart

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

# Why a candidate scenario is turned down (counted in the build summary).
_REPEATED_MAP = "map already taken"
_NO_ROUTE = "no route for "  # + the first vehicle (in the configured order) that cannot reach G
_TIED_ROUTES = "tied routes for "  # + the first vehicle with several minimum-cost routes (unique_routes only)

_VEHICLE_OF_TOKEN = {token: vehicle for vehicle, token in VEHICLE_TOKENS.items()}

# Written into hrmkit_build.json; a stable identifier (older datasets carry it), not a module path.
BUILDER = "hrmkit.data.routing"


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


@dataclass
class RoutingBuildConfig:
    """What `build_routing` makes."""

    size: int = 30
    """Grid side (>= 8); every example holds size*size map cells plus one vehicle token."""
    train_bases: int = 240
    """Base training scenarios (distinct maps); each gives one example per vehicle, all in one group."""
    test_bases: int = 100
    """Test scenarios (maps never seen in train); each gives one example per vehicle."""
    vehicles: tuple[str, ...] | str = VEHICLES
    """Vehicles (names or one comma-separated string) from bike, car, van, truck; every map has a route for each."""
    unique_routes: bool = False
    """Keep only scenarios where every vehicle has exactly one minimum-cost route, so exact match = cost-optimality."""
    aug: bool = False
    """Add the 8 dihedral transforms of each training scenario to its group (test is never augmented)."""
    seed: int = 0
    """Seed for everything random; the same seed builds the same bytes."""


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
    but for cells marked path; every marked cell may be entered by the vehicle; G and every marked
    cell are 4-connected to S through marked cells. The cost is that of entering every marked cell
    and G, which is the route's cost when the marks form one route (a loop or branch only adds).
    A malformed input is a fault too, so model predictions can be scored blindly.
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
        return f"label changes cell {divmod(cell, size)} from {TOKEN_NAMES[cells[cell]]} to token {marks[cell]}", None
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
    return None, int(costs[marked].sum()) + int(costs[goal])


def is_legal_path(input_row: Any, label_row: Any, size: int) -> tuple[bool, int | None]:
    """(valid, cost): whether `label_row` marks a legal S->G route for the row's vehicle (see `judge_path`)."""
    fault, cost = judge_path(input_row, label_row, size)
    return fault is None, cost


def _label_for(input_row: np.ndarray, size: int) -> np.ndarray | None:
    route = optimal_route(input_row, size)
    if route is None:
        return None
    labels = input_row.copy()
    labels[route[1][1:-1]] = PATH
    labels[-1] = 0  # the vehicle position: ignored by the loss
    return labels


# --------------------------------------------------------------------------- the map generator


def _line_positions(size: int, rng: np.random.Generator) -> list[int]:
    """Where road lines cross one axis: blocks of 2..4 buildings between them."""
    positions, at = [], int(rng.integers(0, 3))
    while at < size:
        positions.append(at)
        at += int(rng.integers(3, 6))
    return positions


def _paint_lines(grid: np.ndarray, lines: list[int], crossings: list[int], rng: np.random.Generator) -> None:
    """Roads along the rows `lines` of `grid` (pass a transpose for columns); crossing cells keep the bigger road."""
    size = grid.shape[1]
    avenues = set(rng.choice(lines, max(1, len(lines) // 4), replace=False).tolist())
    bounds = sorted({0, size - 1, *crossings})
    for line in lines:
        if line in avenues:
            grid[line] = np.maximum(grid[line], AVENUE)
            continue
        for begin, end in zip(bounds, bounds[1:]):
            draw = rng.random()
            if draw < 0.2:
                continue  # a missing segment: the block runs through
            road = LANE if draw < 0.55 else STREET
            grid[line, begin : end + 1] = np.maximum(grid[line, begin : end + 1], road)


def _paint_highway(grid: np.ndarray, rng: np.random.Generator) -> None:
    """A 45-degree highway as a 4-connected staircase from the top or left edge to the far side."""
    size = len(grid)
    if rng.random() < 0.5:
        row, column = 0, int(rng.integers(0, size // 2))
    else:
        row, column = int(rng.integers(0, size // 2)), 0
    step_right = bool(rng.integers(2))
    rows, columns = [], []
    while row < size and column < size:
        rows.append(row)
        columns.append(column)
        if step_right:
            column += 1
        else:
            row += 1
        step_right = not step_right
    if rng.random() < 0.5:
        columns = [size - 1 - column for column in columns]  # running down-left instead
    # A junction with a road is an avenue cell: a 4-connected staircase of highway alone would
    # wall off everything on one side from the vehicles that may not drive on highways.
    under = grid[rows, columns]
    grid[rows, columns] = np.where(under == BUILDING, HIGHWAY, np.maximum(under, AVENUE))


def _road_neighbours(grid: np.ndarray, row: int, column: int, roads: tuple[int, ...]) -> list[tuple[int, int]]:
    size = len(grid)
    return [
        (r, c)
        for r, c in ((row - 1, column), (row + 1, column), (row, column - 1), (row, column + 1))
        if 0 <= r < size and 0 <= c < size and grid[r, c] in roads
    ]


def _add_jams_and_closures(grid: np.ndarray, rng: np.random.Generator) -> None:
    roads = (LANE, STREET, AVENUE, HIGHWAY)
    road_cells = np.argwhere(np.isin(grid, roads))
    for _ in range(max(1, round(0.03 * len(road_cells)))):
        row, column = road_cells[rng.integers(len(road_cells))].tolist()
        for _ in range(int(rng.integers(2, 5))):  # a short jam along the road
            if grid[row, column] in roads:
                grid[row, column] += JAM_OFFSET
            onward = _road_neighbours(grid, row, column, roads)
            if not onward:
                break
            row, column = onward[rng.integers(len(onward))]
    for row, column in road_cells[rng.choice(len(road_cells), max(1, round(0.02 * len(road_cells))), replace=False)]:
        grid[row, column] = CLOSURE


def _place_depots(grid: np.ndarray, rng: np.random.Generator) -> bool:
    """Put S and G on two buildings fronting an open road, at least size//2 apart; False if no such pair."""
    size = len(grid)
    open_road = np.pad((grid >= LANE) & (grid <= JAMMED_HIGHWAY), 1)
    next_to_road = open_road[:-2, 1:-1] | open_road[2:, 1:-1] | open_road[1:-1, :-2] | open_road[1:-1, 2:]
    fronting = np.argwhere((grid == BUILDING) & next_to_road)
    if len(fronting) < 2:
        return False
    start = fronting[rng.integers(len(fronting))]
    far = fronting[np.abs(fronting - start).sum(axis=1) >= size // 2]
    if not len(far):
        return False
    goal = far[rng.integers(len(far))]
    grid[tuple(start)], grid[tuple(goal)] = START, GOAL
    return True


def random_city(size: int, rng: np.random.Generator) -> np.ndarray:
    """A [size, size] map of cell tokens with one S and one G (see the module docstring)."""
    for _ in range(100):
        grid = np.full((size, size), BUILDING, dtype=np.uint8)
        rows, columns = _line_positions(size, rng), _line_positions(size, rng)
        _paint_lines(grid, rows, columns, rng)
        _paint_lines(grid.T, columns, rows, rng)  # a transposed view: paints the columns in place
        for _ in range(1 + (size >= 20)):
            _paint_highway(grid, rng)
        _add_jams_and_closures(grid, rng)
        if _place_depots(grid, rng):
            return grid
    raise RuntimeError(f"could not place two depots on a {size}x{size} map in 100 tries")


def _encode(grid: np.ndarray, vehicle: str) -> np.ndarray:
    return np.append(grid.reshape(-1), VEHICLE_TOKENS[vehicle]).astype(np.uint8)


def _scenario(grid: np.ndarray, vehicles: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """([vehicles, seq_len] inputs, labels) of one map; from the first vehicle with no route on, label rows are zeros."""
    size = len(grid)
    inputs = np.stack([_encode(grid, vehicle) for vehicle in vehicles])
    labels = np.zeros_like(inputs)
    for row, input_row in enumerate(inputs):
        label = _label_for(input_row, size)
        if label is None:
            break  # the scenario is turned down anyway: spare the other vehicles' searches
        labels[row] = label
    return inputs, labels


def _scenario_candidates(size: int, vehicles: tuple[str, ...], rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        yield _scenario(random_city(size, rng), vehicles)


# --------------------------------------------------------------------------- symmetries and splits


def _bare_map(inputs: np.ndarray, size: int) -> np.ndarray:
    """[size, size] map of a scenario's first row with its depots turned back into buildings."""
    grid = inputs[0, :-1].reshape(size, size)
    return np.where((grid == START) | (grid == GOAL), BUILDING, grid).astype(np.uint8)


def _dihedral_rows(rows: np.ndarray, size: int, index: int) -> np.ndarray:
    """Dihedral transform `index` of the map part of every row; the vehicle position stays put."""
    maps = np.stack([dihedral_transform(row[:-1].reshape(size, size), index).reshape(-1) for row in rows])
    return np.concatenate([maps, rows[:, -1:]], axis=1)


def _split_arrays(selection: Selection, size: int, vehicles: int, aug: bool) -> dict[str, np.ndarray]:
    """The five reference arrays: a group per scenario, a puzzle per (transformed) map, an example per vehicle."""
    variants = range(8) if aug else range(1)
    inputs = [_dihedral_rows(rows, size, index) for rows in selection.inputs for index in variants]
    labels = [_dihedral_rows(rows, size, index) for rows in selection.labels for index in variants]
    num_puzzles = len(inputs)
    empty = np.zeros((0, size * size + 1), dtype=np.uint8)
    return {
        "inputs": np.concatenate([empty, *inputs]),
        "labels": np.concatenate([empty, *labels]),
        "puzzle_identifiers": np.zeros(num_puzzles, dtype=np.int32),
        "puzzle_indices": np.arange(0, num_puzzles * vehicles + 1, vehicles, dtype=np.int32),
        "group_indices": np.arange(0, num_puzzles + 1, len(variants), dtype=np.int32),
    }


def _metadata(size: int, num_groups: int, vehicles: int) -> PuzzleDatasetMetadata:
    return PuzzleDatasetMetadata(
        pad_id=0,
        ignore_label_id=0,
        blank_identifier_id=0,
        vocab_size=VOCAB_SIZE,
        seq_len=size * size + 1,
        num_puzzle_identifiers=1,
        total_groups=num_groups,
        mean_puzzle_examples=float(vehicles),
        sets=["all"],
    )


# --------------------------------------------------------------------------- building


def vehicle_names(vehicles: Sequence[str] | str) -> tuple[str, ...]:
    """Vehicle names from a sequence or one comma-separated string; ValueError for unknown, repeated or none."""
    names = [name.strip() for name in vehicles.split(",") if name.strip()] if isinstance(vehicles, str) else [
        str(name) for name in vehicles]
    unknown = [name for name in names if name not in VEHICLES]
    if unknown:
        raise ValueError(f"unknown vehicle {unknown[0]!r}; choose from {', '.join(VEHICLES)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"vehicle {repeated[0]!r} is listed more than once")
    if not names:
        raise ValueError(f"vehicles must name at least one of {', '.join(VEHICLES)}")
    return tuple(names)


def _validate_config(cfg: RoutingBuildConfig) -> tuple[str, ...]:
    if not isinstance(cfg.size, int) or cfg.size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE}, got {cfg.size!r}")
    if cfg.size * cfg.size + 1 > 1 << 20:
        raise ValueError(f"size {cfg.size} is too large: a row would hold {cfg.size * cfg.size + 1} tokens")
    for name in ("train_bases", "test_bases", "seed"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    return vehicle_names(cfg.vehicles)


def _select(candidates: Iterator[tuple[np.ndarray, np.ndarray]], count: int, taken_maps: set[bytes],
            cfg: RoutingBuildConfig, vehicles: tuple[str, ...], report: ProgressCallback, description: str) -> Selection:
    """Scenarios every vehicle can drive whose map (in any dihedral transform) is new; `taken_maps` grows."""

    def rejection(inputs: np.ndarray, labels: np.ndarray) -> str | None:
        missing = [vehicle for vehicle, label in zip(vehicles, labels) if not label.any()]
        if missing:
            return _NO_ROUTE + missing[0]
        bare = _bare_map(inputs, cfg.size)
        if any(dihedral_transform(bare, index).tobytes() in taken_maps for index in range(8)):
            return _REPEATED_MAP
        if cfg.unique_routes:
            tied = [vehicle for vehicle, row in zip(vehicles, inputs) if count_optimal_routes(row, cfg.size) > 1]
            return _TIED_ROUTES + tied[0] if tied else None
        return None

    def impossible(selection: Selection) -> str:
        counts = {prefix: sum(n for reason, n in selection.rejected.items() if reason.startswith(prefix))
                  for prefix in (_NO_ROUTE, _TIED_ROUTES)}
        return (f"{description}: made {len(selection.inputs)} of {count}, then {MAX_CONSECUTIVE_REJECTIONS} "
                f"scenarios in a row were turned down ({counts[_NO_ROUTE]} so far without a route for some vehicle, "
                f"{counts[_TIED_ROUTES]} with tied routes, {selection.rejected[_REPEATED_MAP]} with a map already "
                "taken); ask for fewer scenarios or a larger size")

    return select(candidates, count, rejection, lambda inputs: taken_maps.add(_bare_map(inputs, cfg.size).tobytes()),
                  True, report, description, impossible)


def _route_stats(selection: Selection, vehicles: tuple[str, ...], size: int) -> dict[str, Any] | None:
    """Per-vehicle route costs and steps, and how many different routes the vehicles of a scenario take."""
    if not selection.labels:
        return None
    costs: dict[str, list[int]] = {vehicle: [] for vehicle in vehicles}
    steps: dict[str, list[int]] = {vehicle: [] for vehicle in vehicles}
    distinct, tied = [], 0
    for inputs, labels in zip(selection.inputs, selection.labels):
        routes = set()
        for vehicle, input_row, label_row in zip(vehicles, inputs, labels):
            tied += count_optimal_routes(input_row, size) > 1
            _, cost = is_legal_path(input_row, label_row, size)
            costs[vehicle].append(int(cost))
            marked = label_row[:-1] == PATH
            steps[vehicle].append(int(marked.sum()) + 1)
            routes.add(marked.tobytes())
        distinct.append(len(routes))
    return {
        "cost": {vehicle: spread(np.array(values)) for vehicle, values in costs.items()},
        "steps": {vehicle: spread(np.array(values)) for vehicle, values in steps.items()},
        "distinct_routes_per_scenario": spread(np.array(distinct)),
        "examples_with_tied_routes": tied,  # their exact label is one of several optimal answers
    }


def _rejections(selection: Selection) -> dict[str, Any]:
    by_vehicle = {
        key: {reason[len(prefix):]: n for reason, n in sorted(selection.rejected.items()) if reason.startswith(prefix)}
        for key, prefix in (("no_route", _NO_ROUTE), ("tied_routes", _TIED_ROUTES))
    }
    return {"map_already_taken": selection.rejected[_REPEATED_MAP], **by_vehicle}


def build_routing(
    cfg: RoutingBuildConfig,
    out_dir: str | Path,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Build a train/test routing dataset at `out_dir`; returns the summary also saved in hrmkit_build.json."""
    started = time.perf_counter()
    vehicles = _validate_config(cfg)
    out_dir = check_output_free(out_dir, overwrite)
    report = progress or (lambda description, completed, total: None)
    taken_maps: set[bytes] = set()
    test = _select(_scenario_candidates(cfg.size, vehicles, np.random.default_rng([cfg.seed, 0])), cfg.test_bases,
                   taken_maps, cfg, vehicles, report, "test scenarios")
    train = _select(_scenario_candidates(cfg.size, vehicles, np.random.default_rng([cfg.seed, 1])), cfg.train_bases,
                    taken_maps, cfg, vehicles, report, "train scenarios")
    train_arrays = _split_arrays(train, cfg.size, len(vehicles), cfg.aug)
    test_arrays = _split_arrays(test, cfg.size, len(vehicles), aug=False)
    summary: dict[str, Any] = {
        "builder": BUILDER,
        "config": asdict(cfg),
        "vehicles": list(vehicles),
        "tokens": token_map(),
        "vehicle_table": {vehicle: vehicle_table()[vehicle] for vehicle in vehicles},
        "train_groups": len(train.inputs),
        "train_examples": len(train_arrays["inputs"]),
        "test_scenarios": len(test.inputs),
        "test_examples": len(test_arrays["inputs"]),
        "routes": {"train": _route_stats(train, vehicles, cfg.size), "test": _route_stats(test, vehicles, cfg.size)},
        "rejected": {"train": _rejections(train), "test": _rejections(test)},
    }
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return write_generated_dataset(out_dir, train_arrays, test_arrays,
                                   _metadata(cfg.size, len(train.inputs), len(vehicles)),
                                   _metadata(cfg.size, len(test.inputs), len(vehicles)), summary, overwrite, report)
